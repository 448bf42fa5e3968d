# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The data sample that carries one image / text of any task through mmupv2.

Field names follow mmdet (instances) and mmpretrain (labels, captions) so that
their metrics (``mmdet.CocoMetric``, ``mmpretrain.Accuracy``,
``mmpretrain.COCOCaption``, ``mmpretrain.RetrievalRecall``) read our samples
unchanged.
"""
from typing import List, Sequence, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmpretrain.structures.data_sample import format_label, format_score

#: The tasks of Uni-Perceiver v2 (paper Sec. 4.3); the value of
#: ``metainfo['task']`` of every sample.
TASKS = ('classification', 'detection', 'instance_segmentation', 'captioning',
         'retrieval', 'mlm')

LabelType = Union[torch.Tensor, np.ndarray, Sequence, int]


def check_task(task: str) -> str:
    """Return ``task`` if it is one of :data:`TASKS`, else raise a
    ``ValueError`` that lists the valid names."""
    if task not in TASKS:
        raise ValueError(
            f'unknown task {task!r}; expected one of {", ".join(TASKS)}')
    return task


class UPv2DataSample(DetDataSample):
    """A :class:`~mmdet.structures.DetDataSample` with the fields of every
    Uni-Perceiver v2 task.

    Meta information (``metainfo``; the data preprocessor keeps these):
        - ``task`` (str): one of :data:`TASKS`. Set with :meth:`set_task`,
          read as ``sample.task``.
        - ``dataset_name`` (str, optional): the data set the sample comes from
          (metrics and per-data-set sampling ratios key on it).
        - the usual image meta: ``img_path``, ``img_id``/``image_id``,
          ``ori_shape``, ``img_shape``, ``scale_factor``, ...

    Data fields:
        - ``gt_instances`` / ``pred_instances`` (:obj:`InstanceData`),
          inherited from ``DetDataSample``: ``bboxes`` (N, 4) xyxy in pixels,
          ``labels`` (N,), ``masks`` (ground truth: mmdet's ``BitmapMasks``
          (N, H, W); predictions: N COCO RLE dicts, as mmdet's
          ``CocoMetric`` takes them) and ``scores`` (N,) for predictions.
        - ``gt_label`` (LongTensor (K,)): class index / indices
          (classification); indices of the matching gallery items
          (retrieval). ``pred_label`` (LongTensor (K,)) and ``pred_score``
          (FloatTensor (C,)) are the predictions, as in mmpretrain.
        - ``gt_caption`` (list[str]): the reference captions of an image
          (captioning, retrieval); ``pred_caption`` (str) the generated one.
        - ``text`` (str): the input text of a text-side sample (retrieval
          queries, image-text pairs, MLM lines).
        - ``image_feat`` (Tensor (D,)) / ``text_feat`` (Tensor
          (T, D)): retrieval predictions of a test image and of its T texts,
          read by ``ImageTextRetrievalMetric``.
    """

    # ----------------------------------------------------------- metainfo
    def set_task(self, task: str) -> 'UPv2DataSample':
        """Tag the sample with its task (validated against :data:`TASKS`)."""
        self.set_metainfo(dict(task=check_task(task)))
        return self

    # ------------------------------------------------------------- labels
    def set_gt_label(self, value: LabelType) -> 'UPv2DataSample':
        """Set ``gt_label`` (converted to a 1-D LongTensor)."""
        self.set_field(format_label(value), 'gt_label', dtype=torch.Tensor)
        return self

    def set_pred_label(self, value: LabelType) -> 'UPv2DataSample':
        """Set ``pred_label`` (converted to a 1-D LongTensor)."""
        self.set_field(format_label(value), 'pred_label', dtype=torch.Tensor)
        return self

    def set_pred_score(self, value: torch.Tensor) -> 'UPv2DataSample':
        """Set ``pred_score``, a 1-D float tensor of per-class (or per-gallery
        item) scores."""
        if getattr(value, 'ndim', 1) != 1:
            raise ValueError('pred_score must be 1-D (num_classes,), got '
                             f'shape {tuple(value.shape)}')
        self.set_field(format_score(value), 'pred_score', dtype=torch.Tensor)
        return self

    # -------------------------------------------------------------- texts
    def set_gt_caption(self, value: Union[str, List[str]]) -> 'UPv2DataSample':
        """Set ``gt_caption``; a single string becomes a one-item list."""
        captions = [value] if isinstance(value, str) else list(value)
        if not captions or not all(isinstance(c, str) for c in captions):
            raise TypeError(
                f'gt_caption must be a non-empty list of str, got {value!r}')
        self.set_field(captions, 'gt_caption', dtype=list)
        return self

    def set_pred_caption(self, value: str) -> 'UPv2DataSample':
        """Set ``pred_caption``, the generated caption."""
        self.set_field(value, 'pred_caption', dtype=str)
        return self

    def set_text(self, value: str) -> 'UPv2DataSample':
        """Set ``text``, the input text of a text-side sample."""
        self.set_field(value, 'text', dtype=str)
        return self
