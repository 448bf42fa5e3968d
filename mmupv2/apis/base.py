# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What every task of the inferencer shares, in the manner of mmpretrain's
``apis/base.py``: building the model from a config or a model name,
loading the weights, the inference pipelines, turning inputs into batches
and running the model with per-call options.

::

    UniPerceiverInferencer (inferencer.py, the public facade)
      = UPv2BaseInferencer (this file)      model, weights, class-name
                                            defaults, pipelines, batching
      + one TaskInferencer per task family  arguments -> predict options,
        classification.py  localization.py  results -> names / rankings,
        captioning.py      retrieval.py     drawing, pred2dict

    inputs --_inputs_to_list--> images --pipeline[task] + collate-->
        batches --data_preprocessor--> model.predict(inputs, samples,
        **options) --> samples

A call's options (``classes=``, ``beam_size=``) go to
``UniPerceiverV2.predict`` as arguments; the model and its heads are never
changed to serve a call.
"""
import logging
import os.path as osp
from dataclasses import dataclass, field
from typing import (
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import mmcv
import numpy as np
import torch
import torch.nn as nn
from mmdet.visualization import DetLocalVisualizer
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose, pseudo_collate
from mmengine.fileio import join_path, list_dir_or_file
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings
from mmengine.visualization import Visualizer
from rich.progress import track

from mmupv2.models.tasks.class_names import ClassNames, normalize_class_names
from mmupv2.structures import TASKS, UPv2DataSample
from mmupv2.utils import (
    config_from_checkpoint,
    load_checkpoint,
    load_model_checkpoint,
)

from .class_names import CLASS_NAME_TASKS, classes_from_dataset_meta
from .drawing import draw_text_block
from .model_zoo import resolve_model_name
from .task_pipelines import (
    build_pipeline,
    inference_pipeline_cfg,
    resolve_task_pipelines,
    text_pipeline_cfg,
)

InputType = Union[str, np.ndarray]
InputsType = Union[InputType, Sequence[InputType]]
SampleList = List[UPv2DataSample]
PredType = Union[UPv2DataSample, SampleList]
ConfigLike = Union[str, Config, ConfigDict, dict, None]
#: Normalised class names: one list of synonyms per class.
LabelSpace = List[List[str]]

#: The method names of the tasks (and the short names the demo uses).
TASK_ALIASES = {
    'detect': 'detection',
    'segment': 'instance_segmentation',
    'classify': 'classification',
    'caption': 'captioning',
    'retrieve': 'retrieval',
}
#: Where the default class names come from (``class_names=``).
CLASS_NAME_SOURCES = ('config', 'checkpoint')
#: Key of the retrieval text pipeline in :attr:`pipeline`.
TEXT_PIPELINE = 'retrieval_text'
#: Files taken from a folder given as input (as mmdet's ``DetInferencer``).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
#: The default limit of an input image's longer side (pixels), that of the
#: paper's test pipeline (shorter side 1400, longer <= 1600).
MAX_IMAGE_SIZE = 1600


def canonical_task(task: str) -> str:
    """``'detect'`` / ``'detection'`` -> ``'detection'``; raises a
    ``ValueError`` listing the valid names otherwise."""
    task = TASK_ALIASES.get(task, task)
    if task not in TASKS or task == 'mlm':
        names = sorted(set(TASK_ALIASES) | set(TASK_ALIASES.values()))
        raise ValueError(f'unknown task {task!r}; expected one of '
                         f'{", ".join(names)}')
    return task


def first_names(classes: LabelSpace) -> List[str]:
    """The displayed name of each class (its first synonym)."""
    return [names[0] for names in classes]


class UPv2BaseInferencer(BaseInferencer):
    """The shared part of :class:`~mmupv2.apis.UniPerceiverInferencer`
    (see its docstring for the arguments): mmengine's
    :class:`~mmengine.infer.BaseInferencer` with mmupv2's loading (weights
    read weights-only and checked key by key, a stored config taken as
    data, model names from ``metafile.yml``), one inference pipeline per
    task, the checks of the inputs, batching, and
    :meth:`predict_images` / :meth:`predict_texts`, which hand a call's
    options to ``model.predict``.

    With ``class_names='checkpoint'`` the checkpoint's class names become
    the default label space of their task (:meth:`label_space`); they are
    kept here, not written into the task heads.
    """

    def __init__(self,
                 model: ConfigLike,
                 weights: Optional[str] = None,
                 device: Optional[str] = 'cpu',
                 *,
                 pipelines: Optional[Dict[str, List[dict]]] = None,
                 scope: str = 'mmupv2',
                 show_progress: bool = False,
                 max_image_size: Optional[int] = MAX_IMAGE_SIZE,
                 allow_partial: bool = False,
                 trust_checkpoint: Optional[bool] = None,
                 class_names: str = 'config') -> None:
        if class_names not in CLASS_NAME_SOURCES:
            raise ValueError(f'class_names={class_names!r}: expected one of '
                             f'{", ".join(CLASS_NAME_SOURCES)}')
        if max_image_size is not None and (
                not isinstance(max_image_size, int) or max_image_size < 1):
            raise ValueError('max_image_size must be an int >= 1 or None, '
                             f'got {max_image_size!r}')
        self.max_image_size = max_image_size
        self.num_visualized_imgs = 0
        self.dataset_meta: dict = {}
        self._default_classes: Dict[str, LabelSpace] = {}
        self._pipeline_overrides = pipelines
        self._allow_partial = allow_partial
        self._trust_checkpoint = trust_checkpoint
        self._class_names = class_names
        init_default_scope(scope)
        super().__init__(
            model=model,
            weights=weights,
            device=device,
            scope=scope,
            show_progress=show_progress)
        self.model = revert_sync_batchnorm(self.model)

    # ------------------------------------------------------------- set-up
    def _load_model_from_metafile(
            self, model: str) -> Tuple[Config, Optional[str]]:
        """A model *name* (see :func:`.model_zoo.resolve_model_name`); its
        metafile ``Weights`` apply unless ``weights=`` is given."""
        config, weights = resolve_model_name(model)
        return Config.fromfile(config), weights

    def _init_model(self, cfg: ConfigDict, weights: Optional[str],
                    device: str = 'cpu') -> nn.Module:
        """mmengine's ``_init_model`` with mmupv2's loading: read
        ``weights`` weights-only, take a stored config as data (never
        executed), import ``custom_imports``, skip the text encoder's own
        pretrained weights when a checkpoint is given, build the model and
        load the weights strictly."""
        if weights is None and not cfg:
            raise ValueError('UniPerceiverInferencer needs a config (model=)'
                             ' or a checkpoint that stores one (weights=)')
        checkpoint = None
        if weights is not None:
            checkpoint = load_checkpoint(
                weights, map_location='cpu', trust=self._trust_checkpoint)
        if not cfg:  # model=None: the config the checkpoint stores
            cfg.update(config_from_checkpoint(checkpoint, weights)._cfg_dict)
        if 'model' not in cfg:
            raise KeyError(
                f'the config has no "model" key (keys: {sorted(cfg)})')
        if cfg.get('custom_imports'):
            import_modules_from_strings(**cfg['custom_imports'])
        text_encoder = cfg.model.get('text_encoder')
        if weights is not None and isinstance(text_encoder, dict) \
                and text_encoder.get('hf_config') is None:
            text_encoder['load_pretrained'] = False
        if cfg.model.get('pretrained') is not None:
            del cfg.model.pretrained
        model = MODELS.build(cfg.model)
        model.cfg = cfg
        self._weights = weights
        self._load_weights_to_model(model, checkpoint, cfg)
        model.to(device)
        model.eval()
        return model

    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: Optional[ConfigDict]) -> None:
        """Load the weights with a check of every key; with
        ``class_names='checkpoint'`` keep the checkpoint's class names as
        the default label spaces (the heads keep their own)."""
        if checkpoint is None:
            super()._load_weights_to_model(model, checkpoint, cfg)
            return
        load_model_checkpoint(
            model, checkpoint, strict=not self._allow_partial,
            source=getattr(self, '_weights', None) or 'the checkpoint')
        meta = (checkpoint.get('meta') or {}).get('dataset_meta') or {}
        self.dataset_meta = dict(meta)
        model.dataset_meta = self.dataset_meta
        differ = []
        for task in CLASS_NAME_TASKS:
            if task not in model.tasks:
                continue
            classes = classes_from_dataset_meta(meta, task)
            if classes is None:
                continue
            if self._class_names == 'checkpoint':
                self._default_classes[task] = normalize_class_names(classes)
            elif not self._same_classes(model.tasks[task], classes):
                differ.append(task)
        if differ:
            print_log(
                f'the checkpoint was trained with other class names for '
                f'{", ".join(differ)} than the config has; using the '
                "config's (class_names='checkpoint' takes the "
                "checkpoint's)",
                logger='current',
                level=logging.WARNING)

    @staticmethod
    def _same_classes(head: nn.Module, classes: ClassNames) -> bool:
        """Whether ``head``'s class names are ``classes`` (first synonyms
        compared)."""
        own = getattr(head, 'classes', None)
        if own is None:
            return False
        first = [c if isinstance(c, str) else c[0] for c in classes]
        return first_names(own) == first

    def _init_pipeline(self, cfg: ConfigDict) -> Dict[str, Compose]:
        """One inference pipeline per image task of the model, and the
        text pipeline of retrieval (see :mod:`.task_pipelines`)."""
        tasks = list(self.model.tasks)
        found = resolve_task_pipelines(cfg, tasks, self._pipeline_overrides)
        pipelines = {
            task: build_pipeline(
                inference_pipeline_cfg(pipeline, task, self.max_image_size))
            for task, pipeline in found.items()
        }
        if 'retrieval' in found:
            pipelines[TEXT_PIPELINE] = build_pipeline(
                text_pipeline_cfg(found['retrieval']))
        return pipelines

    def _init_collate(self, cfg: ConfigDict) -> Callable:
        """``pseudo_collate``, as every mmupv2 data loader: the model's data
        preprocessor pads and stacks the images."""
        return pseudo_collate

    def _init_visualizer(self, cfg: ConfigDict) -> Visualizer:
        """The config's ``visualizer``, else an mmdet
        ``DetLocalVisualizer``."""
        visualizer = super()._init_visualizer(cfg)
        if visualizer is None:
            visualizer = DetLocalVisualizer(
                name=f'{type(self).__name__}-{id(self)}')
        return visualizer

    # ------------------------------------------------------------- inputs
    def _inputs_to_list(self, inputs: InputsType) -> list:
        """A local folder -> its images (sorted by name); an (N, H, W, 3)
        array -> N arrays; one image -> a one-item list; a list stays."""
        if isinstance(inputs, str) and osp.isdir(inputs):
            return [
                join_path(inputs, name) for name in sorted(
                    list_dir_or_file(
                        inputs, list_dir=False, suffix=IMG_EXTENSIONS))
            ]
        if isinstance(inputs, np.ndarray) and inputs.ndim == 4:
            return list(inputs)
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        return [inputs]

    @staticmethod
    def _is_single(inputs: InputsType) -> bool:
        """One image (not a folder, list or stacked array)."""
        if isinstance(inputs, str):
            return not osp.isdir(inputs)
        return isinstance(inputs, np.ndarray) and inputs.ndim == 3

    def _finish(self, inputs: InputsType, preds: SampleList) -> PredType:
        """One sample for one image, else the list."""
        return preds[0] if self._is_single(inputs) else preds

    @staticmethod
    def _image_results(image: InputType, index: int, task: str) -> dict:
        """The pipeline's input for image ``index``; checks it."""
        if isinstance(image, str):
            if '://' not in image and not osp.isfile(image):
                raise FileNotFoundError(
                    f'image {index}: {image!r} does not exist')
            return dict(img_path=image, task=task)
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 \
                    or image.dtype != np.uint8:
                raise ValueError(
                    f'image {index}: expected an (H, W, 3) BGR uint8 array '
                    '(as mmcv.imread returns), got shape '
                    f'{tuple(image.shape)} and dtype {image.dtype}')
            return dict(img=image, task=task)
        raise TypeError(f'image {index}: expected a path or an (H, W, 3) '
                        f'BGR uint8 array, got {type(image).__name__}')

    def _check_task(self, task: str) -> str:
        """The canonical task name; the model must have its head."""
        task = canonical_task(task)
        if task not in self.model.tasks or task not in self.pipeline:
            raise ValueError(f'the model has no {task!r} task head; it has '
                             f'{", ".join(self.model.tasks)}')
        return task

    # --------------------------------------------------------- class names
    def label_space(self, task: str, classes: Optional[ClassNames],
                    arg: str) -> LabelSpace:
        """The label space of one call of ``task``: ``classes`` when given
        (checked; errors are prefixed with ``arg``), else the default one
        (the checkpoint's with ``class_names='checkpoint'``, else the
        head's configured ``classes``).

        Returns:
            list[list[str]]: one list of synonyms per class, the value of
            the ``classes=`` option of ``model.predict``.
        """
        if classes is not None:
            try:
                return normalize_class_names(classes)
            except ValueError as err:
                raise ValueError(f'{arg}: {err}') from err
        default = self._default_classes.get(task) or getattr(
            self.model.tasks[task], 'classes', None)
        if default is None:
            raise ValueError(
                f'the {task} head has no class names: pass {arg}=[...], or '
                'a checkpoint whose meta.dataset_meta has them, or set '
                f'classes in the config of tasks.{task}')
        return default

    def classes(self, task: str) -> Optional[List[str]]:
        """The default class names of ``task`` (first synonym of each), or
        None when it has none."""
        task = self._check_task(task)
        default = self._default_classes.get(task) or getattr(
            self.model.tasks[task], 'classes', None)
        return None if default is None else first_names(default)

    # --------------------------------------------------------- inference
    def preprocess(self,
                   inputs: List[dict],
                   batch_size: int = 1,
                   pipeline: str = 'detection') -> Iterator[dict]:
        """Run ``self.pipeline[pipeline]`` on pipeline inputs and collate
        them in batches.

        Args:
            inputs: ``dict(img_path=..., task=...)``, ``dict(img=...,
                task=...)`` or ``dict(text=..., task=...)`` per item.
            batch_size: items per batch.
            pipeline: a key of :attr:`pipeline`.

        Yields:
            dict: ``inputs`` (list of (3, H, W) uint8 tensors; absent for
            texts) and ``data_samples`` (list of UPv2DataSample).
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be an int >= 1, got '
                             f'{batch_size!r}')
        transform = self.pipeline[pipeline]

        def run(results: dict) -> dict:
            packed = transform(results)
            sample = packed['data_samples']
            if not isinstance(sample, UPv2DataSample):
                raise TypeError(
                    f'the {pipeline} pipeline must end with PackUPv2Inputs '
                    f'(got a {type(sample).__name__})')
            sample.set_task(results['task'])
            return packed

        chunks = self._get_chunk_data(map(run, inputs), batch_size)
        yield from map(self.collate_fn, chunks)

    @torch.no_grad()
    def forward(self, inputs: dict, **options) -> SampleList:
        """``model.predict`` on a batch after the data preprocessor, with
        the call's ``options`` (``classes=``, ``beam_size=`` ...; see
        ``UniPerceiverV2.predict``). A text-only batch (retrieval texts)
        skips the image preprocessing (``inputs=None``)."""
        if inputs.get('inputs') is None:
            data = dict(
                inputs=None,
                data_samples=self.model.data_preprocessor.cast_data(
                    inputs['data_samples']))
        else:
            data = self.model.data_preprocessor(inputs, False)
        return self.model.predict(data['inputs'], data['data_samples'],
                                  **options)

    def _predict(self, items: List[dict], batch_size: int, pipeline: str,
                 **options) -> SampleList:
        preds: SampleList = []
        batches = self.preprocess(items, batch_size, pipeline)
        if self.show_progress:
            batches = track(batches, description=f'Inference ({pipeline})')
        for data in batches:
            preds.extend(self.forward(data, **options))
        return preds

    def predict_images(self, task: str, images: list, batch_size: int,
                       **options) -> SampleList:
        """Run ``task`` on images (paths / arrays, checked here) with the
        pipeline of ``task`` and the predict ``options``."""
        items = [
            self._image_results(img, i, task) for i, img in enumerate(images)
        ]
        if not items:
            raise ValueError(f'{task}: no images given')
        return self._predict(items, batch_size, task, **options)

    def predict_in_label_space(
            self, task: str, images: list, batch_size: int,
            classes: Optional[ClassNames],
            arg: str) -> Tuple[SampleList, List[str]]:
        """Run a class-name task on images in the call's label space
        (:meth:`label_space`, the ``classes=`` option of
        ``model.predict``); each sample's ``metainfo['classes']`` is set.

        Returns:
            tuple: the samples and the displayed name of each class.
        """
        label_space = self.label_space(task, classes, arg)
        preds = self.predict_images(
            task, images, batch_size, classes=label_space)
        names = first_names(label_space)
        for sample in preds:
            sample.set_metainfo(dict(classes=tuple(names)))
        return preds, names

    def predict_texts(self, task: str, texts: List[str],
                      batch_size: int) -> SampleList:
        """Run ``task`` on text-only samples (retrieval queries)."""
        return self._predict([dict(text=t, task=task) for t in texts],
                             batch_size, TEXT_PIPELINE)


@dataclass
class TaskCall:
    """The arguments of one ``inferencer(inputs, task=...)`` call, as each
    task family reads them.

    Attributes:
        inputs: image(s).
        batch_size: images (texts) per forward pass.
        vis_kwargs: arguments of :meth:`UniPerceiverInferencer.visualize`.
        classes: class names (detection, segmentation) or labels
            (classification).
        topk: classification's top-k.
        beam_size: captioning's beams.
        texts: retrieval's texts.
    """
    inputs: InputsType
    batch_size: int = 1
    vis_kwargs: dict = field(default_factory=dict)
    classes: Optional[ClassNames] = None
    topk: int = 5
    beam_size: Optional[int] = None
    texts: Optional[Sequence[str]] = None


class TaskInferencer:
    """One task family of the inferencer (the counterpart of one of
    mmpretrain's ``ImageClassificationInferencer``,
    ``ImageCaptionInferencer`` ...): it turns a call's arguments into
    ``model.predict`` options, runs the shared :class:`UPv2BaseInferencer`
    and adds what the family shows (label names, top-k, rankings); it
    draws its predictions and writes them as plain dicts.

    Args:
        engine: the inferencer whose model, pipelines and visualizer it
            uses.
    """
    #: the tasks (canonical names) this family answers
    tasks: Tuple[str, ...] = ()

    def __init__(self, engine: UPv2BaseInferencer) -> None:
        self.engine = engine

    def from_call(self, task: str,
                  call: TaskCall) -> Tuple[SampleList, Optional[list]]:
        """Run ``task`` for ``inferencer(inputs, task=...)``.

        Returns:
            tuple: the samples and the drawings (or None).
        """
        raise NotImplementedError

    def text_lines(self, sample: UPv2DataSample,
                   texts: Optional[List[str]]) -> List[str]:
        """The lines of text drawn on the image of ``sample``."""
        raise NotImplementedError

    def draw(self, image: np.ndarray, name: str, sample: UPv2DataSample, *,
             out_file: Optional[str], show: bool, wait_time: float,
             pred_score_thr: float,
             texts: Optional[List[str]]) -> np.ndarray:
        """Draw :meth:`text_lines` on ``image`` (H, W, 3) RGB; returns the
        (H, W, 3) RGB drawing, saved to ``out_file`` / shown if asked."""
        visualizer = self.engine.visualizer
        drawing = draw_text_block(visualizer, np.ascontiguousarray(image),
                                  self.text_lines(sample, texts))
        if show:
            visualizer.show(drawing, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawing[..., ::-1], out_file)
        return drawing

    @staticmethod
    def to_dict(sample: UPv2DataSample) -> dict:
        """The family's prediction fields of ``sample`` as plain Python
        values (see :meth:`UniPerceiverInferencer.pred2dict`)."""
        raise NotImplementedError
