# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``UniPerceiverInferencer``: every task of one Uni-Perceiver v2 model on
images given as paths or arrays, with any class names.

The public facade over :mod:`.base` (model, weights, pipelines, batching)
and the task families :mod:`.classification`, :mod:`.localization`
(detection, instance segmentation), :mod:`.captioning` and
:mod:`.retrieval`.
"""
import os.path as osp
from functools import cached_property
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import mmcv
import mmengine
import numpy as np

from mmupv2.models.tasks.class_names import ClassNames
from mmupv2.structures import UPv2DataSample

from .base import (
    InputsType,
    InputType,
    PredType,
    SampleList,
    TaskCall,
    TaskInferencer,
    UPv2BaseInferencer,
)
from .captioning import CaptionInferencer
from .classification import ClassificationInferencer
from .localization import LocalizationInferencer
from .retrieval import RetrievalInferencer, RetrievalResult

#: The task families, each answering its ``tasks``.
TASK_FAMILIES: Tuple[Type[TaskInferencer], ...] = (
    LocalizationInferencer, ClassificationInferencer, CaptionInferencer,
    RetrievalInferencer)
#: ``{task: family}``.
FAMILY_OF_TASK: Dict[str, Type[TaskInferencer]] = {
    task: family
    for family in TASK_FAMILIES for task in family.tasks
}


class UniPerceiverInferencer(UPv2BaseInferencer):
    """Run a Uni-Perceiver v2 model on images: detection, instance
    segmentation, classification, captioning and image-text retrieval, all
    with one set of weights.

    Built on mmengine's :class:`~mmengine.infer.BaseInferencer` (the model
    is built from the config, the checkpoint loaded, the test pipeline
    taken from the config) in the manner of mmdet's ``DetInferencer``. Each
    task has its own method; ``inferencer(inputs, task=...)`` is the
    mmengine-style entry that returns ``{'predictions', 'visualization'}``.

    This class is the facade; the work is split as mmpretrain's ``apis/``:
    :class:`~.base.UPv2BaseInferencer` loads the model and runs batches,
    and one :class:`~.base.TaskInferencer` per task family
    (:mod:`.classification`, :mod:`.localization`, :mod:`.captioning`,
    :mod:`.retrieval`) turns a call's arguments into ``model.predict``
    options and its results into names, top-k lists and rankings.

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
    ``classes=`` / ``labels=`` replace them for one call: the label space
    goes to ``model.predict(..., classes=...)`` as an argument, so the task
    heads are never changed (likewise ``beam_size=`` for captioning). An
    entry may be a list of synonyms; the first is encoded and shown.

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

    @cached_property
    def _families(self) -> Dict[str, TaskInferencer]:
        """``{task: the family that answers it}``, sharing this model."""
        families = {family: family(self) for family in TASK_FAMILIES}
        return {task: families[cls] for task, cls in FAMILY_OF_TASK.items()}

    # -------------------------------------------------------------- tasks
    def detect(self,
               imgs: InputsType,
               classes: Optional[ClassNames] = None,
               **options: Any) -> PredType:
        """Object detection with any class names.

        Args:
            imgs: image(s), see the class docstring.
            classes: class names for this call (an entry may be a list of
                synonyms); default: the checkpoint's / config's.
            **options: keyword-only, as :meth:`_localize`: ``batch_size``
                (images per forward pass, 1), ``out_dir`` (draw the boxes
                into ``{out_dir}/detection/``), ``pred_score_thr`` (only
                boxes scoring above it are drawn, all are returned; 0.3),
                ``show`` (show the drawing in a window).

        Returns:
            UPv2DataSample | list[UPv2DataSample]: ``pred_instances`` with
            ``bboxes`` (N, 4) xyxy in original-image pixels, ``scores``
            (N,) sorted descending, ``labels`` (N,) indices into the classes
            and ``label_names`` (list of N str); ``metainfo['classes']`` is
            the label space used. N is the head's ``num_results`` (at most
            proposals x classes). A model without a detection head answers
            with its instance segmentation head's boxes.
        """
        return self._localize('detection', imgs, classes, **options)

    def segment(self,
                imgs: InputsType,
                classes: Optional[ClassNames] = None,
                **options: Any) -> PredType:
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
        return self._localize('instance_segmentation', imgs, classes,
                              **options)

    def _localize(self,
                  task: str,
                  imgs: InputsType,
                  classes: Optional[ClassNames] = None,
                  *,
                  batch_size: int = 1,
                  out_dir: Optional[str] = None,
                  pred_score_thr: float = 0.3,
                  show: bool = False) -> PredType:
        """What :meth:`detect` and :meth:`segment` run for ``task``
        (``'detection'`` / ``'instance_segmentation'``).

        Args:
            task: the localization task.
            imgs: image(s), see the class docstring.
            classes: class names for this call; None: the defaults.
            batch_size: images per forward pass.
            out_dir: draw into ``{out_dir}/{task}/``.
            pred_score_thr: only instances scoring above it are drawn.
            show: show the drawing in a window.

        Returns:
            UPv2DataSample | list[UPv2DataSample]: see :meth:`detect`.

        Raises:
            TypeError: an option that is not one of the above.
        """
        preds, _ = self._families[task](
            task, imgs, classes, batch_size,
            dict(out_dir=out_dir, pred_score_thr=pred_score_thr, show=show))
        return self._finish(imgs, preds)

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
        preds, _ = self._families['classification'](
            imgs, labels, topk, batch_size, dict(out_dir=out_dir, show=show))
        return self._finish(imgs, preds)

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
        preds, _ = self._families['captioning'](
            imgs, beam_size, batch_size, dict(out_dir=out_dir, show=show))
        return self._finish(imgs, preds)

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
            RetrievalResult: see :class:`~.retrieval.RetrievalResult`.
        """
        return self._families['retrieval'](
            images, texts, topk, batch_size,
            dict(out_dir=out_dir, show=show))[0]

    # ------------------------------------------------------------ drawing
    def _load_rgb(self, image: InputType) -> Tuple[np.ndarray, str]:
        """(H, W, 3) RGB image to draw on, and its output file name."""
        if isinstance(image, str):
            img = mmcv.imfrombytes(mmengine.fileio.get(image))
            return img[..., ::-1], osp.basename(image)
        return image[..., ::-1], f'{self.num_visualized_imgs:08d}.png'

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
        family = self._families[task]
        drawings = []
        for image, sample in zip(inputs, preds):
            img, name = self._load_rgb(image)
            drawings.append(
                family.draw(
                    img,
                    name,
                    sample,
                    out_file=osp.join(out_dir, task, name)
                    if out_dir else None,
                    show=show,
                    wait_time=wait_time,
                    pred_score_thr=pred_score_thr,
                    texts=texts))
            self.num_visualized_imgs += 1
        return drawings

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
        call = TaskCall(
            inputs,
            batch_size=batch_size,
            vis_kwargs=dict(
                out_dir=out_dir,
                pred_score_thr=pred_score_thr,
                show=show,
                return_vis=return_vis),
            classes=classes,
            topk=topk,
            beam_size=beam_size,
            texts=texts)
        preds, vis = self._families[task].from_call(task, call)
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
        family = FAMILY_OF_TASK.get(task)
        if family is not None:
            result.update(family.to_dict(sample))
        return result
