# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``UniPerceiverInferencer``: every task of one Uni-Perceiver v2 model on
images given as paths or arrays, with any class names."""
import contextlib
import glob
import logging
import os.path as osp
from dataclasses import dataclass
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
import mmengine
import numpy as np
import torch
import torch.nn as nn
from mmdet.structures.mask import encode_mask_results
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
from torch import Tensor

from mmupv2.models.tasks.base import ClassNames
from mmupv2.structures import TASKS, UPv2DataSample
from mmupv2.utils import (
    config_from_checkpoint,
    load_checkpoint,
    load_model_checkpoint,
)

from .class_names import CLASS_NAME_TASKS, classes_from_dataset_meta
from .drawing import draw_text_block, drawable_instances
from .model_zoo import model_index
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
#: Texts drawn per image by ``retrieve``.
RETRIEVAL_LINES = 3
#: The default limit of an input image's longer side (pixels), that of the
#: paper's test pipeline (shorter side 1400, longer <= 1600).
MAX_IMAGE_SIZE = 1600
_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Where a config *name* (``model='upv2_tiny_shapes'``) is looked up: the
#: repository's ``configs/`` and an installed package's ``.mim/configs``.
CONFIG_ROOTS = (osp.join(osp.dirname(_PACKAGE_DIR), 'configs'),
                osp.join(_PACKAGE_DIR, '.mim', 'configs'))


def canonical_task(task: str) -> str:
    """``'detect'`` / ``'detection'`` -> ``'detection'``; raises a
    ``ValueError`` listing the valid names otherwise."""
    task = TASK_ALIASES.get(task, task)
    if task not in TASKS or task == 'mlm':
        names = sorted(set(TASK_ALIASES) | set(TASK_ALIASES.values()))
        raise ValueError(f'unknown task {task!r}; expected one of '
                         f'{", ".join(names)}')
    return task


def find_config(name: str) -> str:
    """The path of the config called ``name`` (file name without ``.py``)
    under :data:`CONFIG_ROOTS` (``_base_`` excluded).

    Raises:
        ValueError: no such config; the message lists the known names.
    """
    stem = name[:-3] if name.endswith('.py') else name
    known = {}
    for root in CONFIG_ROOTS:
        for path in sorted(glob.glob(osp.join(root, '**', '*.py'),
                                     recursive=True)):
            if '_base_' not in osp.relpath(path, root).split(osp.sep):
                known.setdefault(osp.splitext(osp.basename(path))[0], path)
    if stem not in known:
        names = set(known) | set(model_index(CONFIG_ROOTS))
        raise ValueError(
            f'model {name!r} is neither a config file nor the name of a '
            f'model (metafile.yml) or config under '
            f'{" or ".join(CONFIG_ROOTS)}; known names: '
            f'{", ".join(sorted(names)) or "none"}')
    return known[stem]


@dataclass
class RetrievalResult:
    """What :meth:`UniPerceiverInferencer.retrieve` returns.

    Attributes:
        image_samples: one sample per image: ``image_feat`` (D,) the
            L2-normalised ``<SPE>`` feature; with texts also ``pred_score``
            (T,) the scaled cosine similarity to each text and ``pred_label``
            (k,) the indices of the best texts, best first.
        text_samples: one sample per text: ``text`` (str), ``text_feat``
            (1, D); with images also ``pred_score`` (N,) and ``pred_label``
            (k,) over the images.
        similarity: (N, T) image-to-text similarities ``cos / tau`` (the
            retrieval task's temperature), or None when one side is empty.
    """
    image_samples: SampleList
    text_samples: SampleList
    similarity: Optional[Tensor]


class UniPerceiverInferencer(BaseInferencer):
    """Run a Uni-Perceiver v2 model on images: detection, instance
    segmentation, classification, captioning and image-text retrieval, all
    with one set of weights.

    Built on mmengine's :class:`~mmengine.infer.BaseInferencer` (the model
    is built from the config, the checkpoint loaded, the test pipeline
    taken from the config) in the manner of mmdet's ``DetInferencer``. Each
    task has its own method; ``inferencer(inputs, task=...)`` is the
    mmengine-style entry that returns ``{'predictions', 'visualization'}``.

    **Inputs.** An image is a path or an (H, W, 3) BGR ``uint8`` array (what
    ``mmcv.imread`` returns); a folder stands for its images; a list (or an
    (N, H, W, 3) array) is a batch. A single image gives a single
    :class:`~mmupv2.structures.UPv2DataSample`, a batch a list of them, in
    order. ``batch_size`` images go through the model at once.

    **Pipelines.** Each task uses the test pipeline of its data set in the
    config (``test_dataloader``, else ``val_dataloader``; a single loader or
    ``{entry name: loader}`` as in ``MultiTaskValLoop``), see
    :mod:`~mmupv2.apis.task_pipelines`: ``LoadImageFromFile`` becomes mmdet's
    ``InferencerLoader`` (paths and arrays) and the annotation transforms
    are dropped. The sample is tagged with its task (``PackUPv2Inputs`` reads
    ``results['task']``).

    **Large images.** After the pipeline's own transforms, an image whose
    longer side exceeds ``max_image_size`` (1600 by default, the paper's
    test size) is shrunk to it (``LimitImageSize``; never upsampled), so a
    4000x4000 photo through a pipeline without resize does not exhaust the
    memory. Boxes and masks still come in the original image's pixels.
    Masks are COCO RLE, pasted at the original size one instance at a time.

    **Weights.** ``weights`` is read weights-only (no code from the file
    runs; ``trust_checkpoint=True`` for a trusted legacy pickle) and must
    fit the model exactly: a checkpoint of another model raises
    :class:`~mmupv2.utils.CheckpointMismatchError` listing the keys that do
    not fit (``allow_partial=True`` loads the tensors that fit, with a
    warning). With ``model=None`` the config stored in the checkpoint is
    parsed as data, never executed (see ``docs/checkpoints.md``).

    **Class names.** Classification, detection and instance segmentation
    compare the image with *class-name targets* encoded by the text encoder
    and the unified decoder, so any list of names works (open vocabulary,
    paper Appendix C). The default names of a task are the task head's
    configured ``classes``; with ``class_names='checkpoint'`` they are the
    ones the checkpoint was trained with (``meta.dataset_meta``: ``{entry
    name: metainfo}`` under ``MultiTaskLoop``, see
    :func:`~mmupv2.apis.class_names.classes_from_dataset_meta`) where it
    has them (a warning names the tasks where the two differ).
    ``classes=`` / ``labels=`` replace them for one call (through the
    heads' ``set_classes``); the defaults come back afterwards. An entry
    may be a list of synonyms; the first is encoded and shown.

    **Drawing.** With ``out_dir`` (or ``show``) the predictions are drawn
    with mmdet's :class:`~mmdet.visualization.DetLocalVisualizer` (or the
    config's ``visualizer``): boxes, masks and label names for detection
    and segmentation (only scores above ``pred_score_thr``); the top-k
    labels, the caption, or the best texts as text on the image for the
    other tasks. Pictures go to ``{out_dir}/{task}/{file name}`` (arrays:
    ``{counter:08d}.png``).

    Args:
        model: a config file, a model name (a ``Name`` of
            ``configs/uniperceiver_v2/metafile.yml``, e.g.
            ``'upv2_tiny_shapes'``, or the name of a file under
            ``configs/``), a :class:`~mmengine.config.Config` / dict with a
            ``model`` key, or None to read the config saved in ``weights``.
        weights: checkpoint path or URL; default: the metafile's
            ``Weights`` of a model name. Without any the weights are random
            (with a warning). When given, ``HFTextEncoder`` is built without
            loading its own pretrained weights (the checkpoint holds them).
        device: e.g. ``'cpu'``, ``'cuda:0'``.
        pipelines: ``{task: data set pipeline}`` used instead of the
            config's (e.g. for a config without test data sets).
        scope: the default registry scope.
        show_progress: show a progress bar per call.
        max_image_size: the longest side (pixels) an image may enter the
            model with; larger ones are shrunk to it, keeping the aspect
            ratio. None: no limit beyond the pipeline's own resize.
        allow_partial: load only the tensors of ``weights`` that fit the
            model (warns) instead of raising.
        trust_checkpoint: read ``weights`` with ``weights_only=False`` (it
            may run code; logged). None follows ``MMUPV2_TRUST_CHECKPOINTS``.
        class_names: ``'config'`` (default): the heads' configured class
            names; ``'checkpoint'``: the checkpoint's ``dataset_meta``.

    Attributes:
        model (UniPerceiverV2): the model, in eval mode.
        pipeline (dict[str, Compose]): the inference pipeline of each image
            task, and of retrieval texts (key ``'retrieval_text'``).
        visualizer (Visualizer): draws the results.
        dataset_meta (dict): the checkpoint's ``meta.dataset_meta`` (empty
            without one).

    Raises:
        CheckpointMismatchError: ``weights`` does not fit the model.
        UnsafeCheckpointError: ``weights`` holds more than weights and
            plain data and is not trusted.
        UnsafeConfigError: ``model=None`` and the stored config is not
            plain data.

    Example:
        >>> inferencer = UniPerceiverInferencer(
        ...     'configs/uniperceiver_v2/upv2_tiny_shapes.py',
        ...     weights='work_dirs/demo/iter_1000.pth')
        >>> sample = inferencer.detect('demo.png', classes=['goldfish'])
        >>> sample.pred_instances.bboxes  # (N, 4) xyxy pixels
        >>> inferencer.caption(['a.png', 'b.png'], out_dir='outputs')
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
        """A model *name*: a ``Name`` of a ``metafile.yml`` under
        :data:`CONFIG_ROOTS` (its ``Config``, and its ``Weights`` unless
        ``weights=`` is given; see :mod:`.model_zoo`), else the config file
        of that name under ``configs/``."""
        info = model_index(CONFIG_ROOTS).get(model)
        if info is None:
            return Config.fromfile(find_config(model)), None
        if not osp.isfile(info.config):
            raise FileNotFoundError(
                f'model {model!r} of {info.metafile}: its Config '
                f'{info.config} does not exist')
        return Config.fromfile(info.config), info.weights

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
        ``class_names='checkpoint'`` make the checkpoint's class names the
        default ones (see the class docstring)."""
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
                model.set_classes(task, classes)
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
        return [names[0] for names in own] == first

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
    def forward(self, inputs: dict, **kwargs) -> SampleList:
        """``model.test_step`` on a batch; a text-only batch (retrieval
        texts) skips the image data preprocessor and runs
        ``model(None, samples, 'predict')``."""
        if inputs.get('inputs') is None:
            samples = self.model.data_preprocessor.cast_data(
                inputs['data_samples'])
            return self.model(None, samples, mode='predict')
        return self.model.test_step(inputs)

    def _predict(self, items: List[dict], batch_size: int,
                 pipeline: str) -> SampleList:
        preds: SampleList = []
        batches = self.preprocess(items, batch_size, pipeline)
        if self.show_progress:
            batches = track(batches, description=f'Inference ({pipeline})')
        for data in batches:
            preds.extend(self.forward(data))
        return preds

    def _predict_images(self, task: str, images: list,
                        batch_size: int) -> SampleList:
        items = [
            self._image_results(img, i, task) for i, img in enumerate(images)
        ]
        if not items:
            raise ValueError(f'{task}: no images given')
        return self._predict(items, batch_size, task)

    @contextlib.contextmanager
    def _label_space(self, task: str, classes: Optional[ClassNames],
                     arg: str) -> Iterator[List[str]]:
        """Use ``classes`` (if given) as the label space of ``task`` for the
        duration; yields the displayed name of each class."""
        head = self.model.tasks[task]
        saved = head.classes
        if classes is not None:
            try:
                head.set_classes(classes)
            except ValueError as err:
                raise ValueError(f'{arg}: {err}') from err
        elif saved is None:
            raise ValueError(
                f'the {task} head has no class names: pass {arg}=[...], or '
                'a checkpoint whose meta.dataset_meta has them, or set '
                f'classes in the config of tasks.{task}')
        try:
            yield [names[0] for names in head.classes]
        finally:
            head.classes = saved

    @contextlib.contextmanager
    def _beam_size(self, beam_size: Optional[int]) -> Iterator[None]:
        """Decode captions with ``beam_size`` beams for the duration."""
        head = self.model.tasks['captioning']
        saved = head.beam_size
        if beam_size is not None:
            if not isinstance(beam_size, int) or beam_size < 1:
                raise ValueError(
                    f'beam_size must be an int >= 1, got {beam_size!r}')
            head.beam_size = beam_size
        try:
            yield
        finally:
            head.beam_size = saved

    def classes(self, task: str) -> Optional[List[str]]:
        """The default class names of ``task`` (first synonym of each), or
        None when it has none."""
        head = self.model.tasks[self._check_task(task)]
        if getattr(head, 'classes', None) is None:
            return None
        return [names[0] for names in head.classes]

    # -------------------------------------------------------------- tasks
    def _finish(self, inputs: InputsType,
                preds: SampleList) -> PredType:
        return preds[0] if self._is_single(inputs) else preds

    def _localize(self, task: str, imgs: InputsType,
                  classes: Optional[ClassNames], batch_size: int,
                  vis_kwargs: dict) -> Tuple[SampleList, Optional[list]]:
        task = canonical_task(task)
        head = self._localization_head(task)
        images = self._inputs_to_list(imgs)
        with self._label_space(head, classes, 'classes') as names:
            preds = self._predict_images(head, images, batch_size)
        for sample in preds:
            sample.set_metainfo(dict(classes=tuple(names)))
            instances = sample.pred_instances
            instances.label_names = [
                names[i] for i in instances.labels.tolist()
            ]
            if head != task:  # boxes of the segmentation head
                del instances.masks
                sample.set_task(task)
        vis = self.visualize(images, preds, task=task, **vis_kwargs)
        return preds, vis

    def _localization_head(self, task: str) -> str:
        """The head that answers ``task``: its own, or for detection the
        instance segmentation head when the model has no detection head
        (the Swin-B/L configs train one head for both, as the paper);
        its boxes are the detections."""
        if (task == 'detection' and task not in self.model.tasks
                and 'instance_segmentation' in self.model.tasks):
            return self._check_task('instance_segmentation')
        return self._check_task(task)

    def detect(self,
               imgs: InputsType,
               classes: Optional[ClassNames] = None,
               *,
               batch_size: int = 1,
               out_dir: Optional[str] = None,
               pred_score_thr: float = 0.3,
               show: bool = False) -> PredType:
        """Object detection with any class names.

        Args:
            imgs: image(s), see the class docstring.
            classes: class names for this call (an entry may be a list of
                synonyms); default: the checkpoint's / config's.
            batch_size: images per forward pass.
            out_dir: draw the boxes into ``{out_dir}/detection/``.
            pred_score_thr: only boxes scoring above it are drawn (all are
                returned).
            show: show the drawing in a window.

        Returns:
            UPv2DataSample | list[UPv2DataSample]: ``pred_instances`` with
            ``bboxes`` (N, 4) xyxy in original-image pixels, ``scores``
            (N,) sorted descending, ``labels`` (N,) indices into the classes
            and ``label_names`` (list of N str); ``metainfo['classes']`` is
            the label space used. N is the head's ``num_results`` (at most
            proposals x classes). A model without a detection head answers
            with its instance segmentation head's boxes.
        """
        preds, _ = self._localize(
            'detection', imgs, classes, batch_size,
            dict(out_dir=out_dir, pred_score_thr=pred_score_thr, show=show))
        return self._finish(imgs, preds)

    def segment(self,
                imgs: InputsType,
                classes: Optional[ClassNames] = None,
                *,
                batch_size: int = 1,
                out_dir: Optional[str] = None,
                pred_score_thr: float = 0.3,
                show: bool = False) -> PredType:
        """Instance segmentation with any class names.

        Args: as :meth:`detect` (drawings in ``{out_dir}/
        instance_segmentation/``).

        Returns:
            UPv2DataSample | list[UPv2DataSample]: as :meth:`detect`, and
            ``pred_instances.masks``: N COCO RLE dicts (``size`` [H, W],
            ``counts`` bytes) at the original image size;
            :func:`~mmupv2.models.tasks.mask_paste.decode_rle_masks` (or
            ``pycocotools.mask.decode``) gives the (N, H, W) bool masks.
        """
        preds, _ = self._localize(
            'instance_segmentation', imgs, classes, batch_size,
            dict(out_dir=out_dir, pred_score_thr=pred_score_thr, show=show))
        return self._finish(imgs, preds)

    def _classify(self, imgs: InputsType, labels: Optional[ClassNames],
                  topk: int, batch_size: int,
                  vis_kwargs: dict) -> Tuple[SampleList, Optional[list]]:
        if not isinstance(topk, int) or topk < 1:
            raise ValueError(f'topk must be an int >= 1, got {topk!r}')
        self._check_task('classification')
        images = self._inputs_to_list(imgs)
        with self._label_space('classification', labels, 'labels') as names:
            preds = self._predict_images('classification', images,
                                         batch_size)
        for sample in preds:
            scores, idx = sample.pred_score.topk(min(topk, len(names)))
            sample.set_metainfo(dict(classes=tuple(names)))
            sample.pred_topk_labels = idx
            sample.pred_topk_scores = scores
            sample.pred_topk_classes = [names[i] for i in idx.tolist()]
            sample.pred_class = names[int(sample.pred_label[0])]
        vis = self.visualize(
            images, preds, task='classification', **vis_kwargs)
        return preds, vis

    def classify(self,
                 imgs: InputsType,
                 labels: Optional[ClassNames] = None,
                 topk: int = 5,
                 *,
                 batch_size: int = 1,
                 out_dir: Optional[str] = None,
                 show: bool = False) -> PredType:
        """Image classification over any label names.

        Args:
            imgs: image(s), see the class docstring.
            labels: label names for this call (an entry may be a list of
                synonyms); default: the checkpoint's / config's.
            topk: how many best labels to list (at most C).
            batch_size: images per forward pass.
            out_dir: draw the top-k labels into
                ``{out_dir}/classification/``.
            show: show the drawing in a window.

        Returns:
            UPv2DataSample | list[UPv2DataSample]: ``pred_score`` (C,)
            softmax over the C labels, ``pred_label`` (1,) its argmax,
            ``pred_class`` (str) its name, ``pred_topk_labels`` (k,),
            ``pred_topk_scores`` (k,) and ``pred_topk_classes`` (k str),
            best first; ``metainfo['classes']`` the label space used.
        """
        preds, _ = self._classify(imgs, labels, topk, batch_size,
                                  dict(out_dir=out_dir, show=show))
        return self._finish(imgs, preds)

    def _caption(self, imgs: InputsType, beam_size: Optional[int],
                 batch_size: int,
                 vis_kwargs: dict) -> Tuple[SampleList, Optional[list]]:
        images = self._inputs_to_list(imgs)
        self._check_task('captioning')
        with self._beam_size(beam_size):
            preds = self._predict_images('captioning', images, batch_size)
        vis = self.visualize(images, preds, task='captioning', **vis_kwargs)
        return preds, vis

    def caption(self,
                imgs: InputsType,
                beam_size: Optional[int] = None,
                *,
                batch_size: int = 1,
                out_dir: Optional[str] = None,
                show: bool = False) -> PredType:
        """Image captioning (beam search over the vocabulary targets).

        Args:
            imgs: image(s), see the class docstring.
            beam_size: beams for this call; default: the captioning head's
                ``beam_size`` (2 in the paper's setting, 1 = greedy).
            batch_size: images per forward pass.
            out_dir: draw the caption into ``{out_dir}/captioning/``.
            show: show the drawing in a window.

        Returns:
            UPv2DataSample | list[UPv2DataSample]: ``pred_caption`` (str).
        """
        preds, _ = self._caption(imgs, beam_size, batch_size,
                                 dict(out_dir=out_dir, show=show))
        return self._finish(imgs, preds)

    def _retrieve(self, images: Optional[InputsType],
                  texts: Optional[Union[str, Sequence[str]]],
                  topk: Optional[int], batch_size: int,
                  vis_kwargs: dict
                  ) -> Tuple[RetrievalResult, Optional[list]]:
        self._check_task('retrieval')
        if images is None and texts is None:
            raise ValueError('retrieve needs images=..., texts=... or both')
        if topk is not None and (not isinstance(topk, int) or topk < 1):
            raise ValueError(f'topk must be an int >= 1, got {topk!r}')
        text_list = [texts] if isinstance(texts, str) else list(texts or [])
        for i, text in enumerate(text_list):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'texts[{i}] must be a non-empty str, got '
                                 f'{text!r}')
        image_list = self._inputs_to_list(images) if images is not None \
            else []
        image_samples = self._predict_images(
            'retrieval', image_list, batch_size) if image_list else []
        text_samples = self._predict(
            [dict(text=t, task='retrieval') for t in text_list], batch_size,
            TEXT_PIPELINE) if text_list else []
        similarity, vis = None, None
        if image_samples and text_samples:
            scale = self.model.tasks['retrieval'].similarity.scale
            with torch.no_grad():
                similarity = torch.stack(
                    [s.image_feat for s in image_samples]) @ torch.cat(
                        [s.text_feat for s in text_samples]).t() * scale
            self._rank(image_samples, similarity, topk)
            self._rank(text_samples, similarity.t(), topk)
            vis = self.visualize(
                image_list,
                image_samples,
                task='retrieval',
                texts=text_list,
                **vis_kwargs)
        return RetrievalResult(image_samples, text_samples, similarity), vis

    def retrieve(self,
                 images: Optional[InputsType] = None,
                 texts: Optional[Union[str, Sequence[str]]] = None,
                 *,
                 topk: Optional[int] = None,
                 batch_size: int = 1,
                 out_dir: Optional[str] = None,
                 show: bool = False) -> RetrievalResult:
        """Image-text retrieval: features of images and texts, and, given
        both, their similarities and rankings in both directions.

        Args:
            images: image(s) (the gallery or the queries).
            texts: text(s).
            topk: the rankings (``pred_label``) keep this many items;
                default all.
            batch_size: images / texts per forward pass.
            out_dir: draw each image's best texts into
                ``{out_dir}/retrieval/`` (needs both images and texts).
            show: show the drawing in a window.

        Returns:
            RetrievalResult: see :class:`RetrievalResult`.
        """
        return self._retrieve(images, texts, topk, batch_size,
                              dict(out_dir=out_dir, show=show))[0]

    @staticmethod
    def _rank(samples: SampleList, scores: Tensor,
              topk: Optional[int]) -> None:
        """``pred_score`` (M,) and ``pred_label`` (k,) from (N, M)."""
        k = scores.shape[1] if topk is None else min(topk, scores.shape[1])
        for sample, row in zip(samples, scores):
            sample.set_pred_score(row)
            sample.set_pred_label(row.topk(k).indices)

    # ------------------------------------------------------------ drawing
    def _load_rgb(self, image: InputType) -> Tuple[np.ndarray, str]:
        """(H, W, 3) RGB image to draw on, and its output file name."""
        if isinstance(image, str):
            img = mmcv.imfrombytes(mmengine.fileio.get(image))
            return img[..., ::-1], osp.basename(image)
        return image[..., ::-1], f'{self.num_visualized_imgs:08d}.png'

    @staticmethod
    def _text_lines(task: str, sample: UPv2DataSample,
                    texts: Optional[List[str]]) -> List[str]:
        if task == 'classification':
            return [
                f'{name}: {float(score):.2f}' for name, score in zip(
                    sample.pred_topk_classes, sample.pred_topk_scores)
            ]
        if task == 'captioning':
            return [sample.pred_caption]
        ranked = sample.pred_label.tolist()[:RETRIEVAL_LINES]
        return [
            f'{float(sample.pred_score[i]):.1f} {texts[i]}' for i in ranked
        ]

    def visualize(self,
                  inputs: list,
                  preds: SampleList,
                  task: str = 'detection',
                  out_dir: Optional[str] = None,
                  pred_score_thr: float = 0.3,
                  show: bool = False,
                  wait_time: float = 0,
                  return_vis: bool = False,
                  texts: Optional[List[str]] = None
                  ) -> Optional[List[np.ndarray]]:
        """Draw predictions on their images.

        Args:
            inputs: the images (paths or BGR arrays).
            preds: their samples with predictions of ``task``.
            task: what to draw: instances (detection, instance
                segmentation) or text (the top-k labels, the caption, the
                best ``texts`` of retrieval).
            out_dir: save to ``{out_dir}/{task}/{name}``.
            pred_score_thr: instances scoring at most this are not drawn.
            show: show in a window.
            wait_time: seconds a shown window stays (0: until closed).
            return_vis: return the drawings even without ``out_dir`` /
                ``show``.
            texts: the retrieval texts (``pred_label`` indexes them).

        Returns:
            list[np.ndarray] | None: (H, W, 3) RGB drawings, or None when
            nothing was asked for.
        """
        if not (out_dir or show or return_vis):
            return None
        drawings = []
        for image, sample in zip(inputs, preds):
            img, name = self._load_rgb(image)
            out_file = osp.join(out_dir, task, name) if out_dir else None
            if task in ('detection', 'instance_segmentation'):
                self.visualizer.dataset_meta = dict(
                    classes=sample.metainfo.get('classes'))
                self.visualizer.add_datasample(
                    name,
                    img,
                    self._drawable(sample, pred_score_thr, img.shape[:2]),
                    draw_gt=False,
                    show=show,
                    wait_time=wait_time,
                    out_file=out_file,
                    pred_score_thr=pred_score_thr)
                drawing = self.visualizer.get_image()
            else:
                drawing = draw_text_block(
                    self.visualizer, np.ascontiguousarray(img),
                    self._text_lines(task, sample, texts))
                if show:
                    self.visualizer.show(
                        drawing, win_name=name, wait_time=wait_time)
                if out_file is not None:
                    mmcv.imwrite(drawing[..., ::-1], out_file)
            drawings.append(drawing)
            self.num_visualized_imgs += 1
        return drawings

    @staticmethod
    def _drawable(sample: UPv2DataSample, pred_score_thr: float,
                  shape: Tuple[int, int]) -> UPv2DataSample:
        """The instances to draw (see :func:`.drawing.drawable_instances`).
        """
        return drawable_instances(sample, pred_score_thr, shape)

    # --------------------------------------------------- mmengine entry
    def __call__(self,
                 inputs: InputsType,
                 task: str = 'detection',
                 return_datasamples: bool = False,
                 batch_size: int = 1,
                 out_dir: Optional[str] = None,
                 pred_score_thr: float = 0.3,
                 show: bool = False,
                 return_vis: bool = False,
                 print_result: bool = False,
                 classes: Optional[ClassNames] = None,
                 topk: int = 5,
                 beam_size: Optional[int] = None,
                 texts: Optional[Sequence[str]] = None) -> dict:
        """mmengine's entry point: run ``task`` on ``inputs``.

        Args:
            inputs: image(s), see the class docstring.
            task: a task name or its method name (``'detect'`` ...).
            return_datasamples: predictions as UPv2DataSample instead of
                dicts (:meth:`pred2dict`).
            batch_size / out_dir / pred_score_thr / show: as in the task
                methods.
            return_vis: return the drawings.
            print_result: print the prediction dicts.
            classes: class names (detection, segmentation) or labels
                (classification).
            topk: classification's top-k.
            beam_size: captioning's beams.
            texts: retrieval's texts (the images are ``inputs``).

        Returns:
            dict: ``predictions`` (list, one per image) and
            ``visualization`` (list of (H, W, 3) RGB arrays, or None).
        """
        task = self._check_task(task)
        vis_kwargs = dict(out_dir=out_dir, show=show, return_vis=return_vis)
        if task in ('detection', 'instance_segmentation'):
            vis_kwargs['pred_score_thr'] = pred_score_thr
            preds, vis = self._localize(task, inputs, classes, batch_size,
                                        vis_kwargs)
        elif task == 'classification':
            preds, vis = self._classify(inputs, classes, topk, batch_size,
                                        vis_kwargs)
        elif task == 'captioning':
            preds, vis = self._caption(inputs, beam_size, batch_size,
                                       vis_kwargs)
        else:
            result, vis = self._retrieve(inputs, texts, None, batch_size,
                                         vis_kwargs)
            preds = result.image_samples
        return self.postprocess(preds, vis, return_datasamples, print_result)

    def postprocess(self,
                    preds: SampleList,
                    visualization: Optional[List[np.ndarray]] = None,
                    return_datasample: bool = False,
                    print_result: bool = False) -> dict:
        """Pack predictions (as samples or :meth:`pred2dict` dicts) and
        drawings into ``{'predictions', 'visualization'}``."""
        results = preds if return_datasample else [
            self.pred2dict(p) for p in preds
        ]
        if print_result:
            print(results)
        return dict(predictions=results, visualization=visualization)

    @staticmethod
    def pred2dict(sample: UPv2DataSample) -> dict:
        """The prediction of a sample as JSON-serialisable Python values.

        Returns:
            dict: ``task``, and per task: ``labels``, ``label_names``,
            ``scores``, ``bboxes`` (xyxy) and ``masks`` (COCO RLE) for
            detection / segmentation; ``pred_label``, ``pred_class``,
            ``pred_scores``, ``topk_labels``, ``topk_classes``,
            ``topk_scores`` for classification; ``caption``; ``image_feat``
            / ``text_feat``, ``pred_score`` and ``pred_label`` for
            retrieval.
        """
        task = sample.metainfo.get('task')
        result = dict(task=task)
        if task in ('detection', 'instance_segmentation'):
            instances = sample.pred_instances.cpu()
            result.update(
                labels=instances.labels.tolist(),
                label_names=list(instances.get('label_names', [])),
                scores=instances.scores.tolist(),
                bboxes=instances.bboxes.tolist())
            if 'masks' in instances:
                masks = instances.masks
                if isinstance(masks, Tensor):
                    masks = encode_mask_results(masks.numpy())
                result['masks'] = [
                    dict(mask, counts=mask['counts'].decode()) if isinstance(
                        mask['counts'], bytes) else dict(mask)
                    for mask in masks
                ]
        elif task == 'classification':
            result.update(
                pred_label=int(sample.pred_label[0]),
                pred_class=sample.get('pred_class'),
                pred_scores=sample.pred_score.tolist(),
                topk_labels=sample.get('pred_topk_labels',
                                       torch.empty(0)).tolist(),
                topk_classes=list(sample.get('pred_topk_classes', [])),
                topk_scores=sample.get('pred_topk_scores',
                                       torch.empty(0)).tolist())
        elif task == 'captioning':
            result['caption'] = sample.pred_caption
        elif task == 'retrieval':
            for key in ('image_feat', 'text_feat', 'pred_score',
                        'pred_label'):
                if key in sample:
                    result[key] = sample.get(key).tolist()
        return result
