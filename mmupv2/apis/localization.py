# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Object detection and instance segmentation with any class names (the
``detect`` / ``segment`` part of
:class:`~mmupv2.apis.UniPerceiverInferencer`)::

    images, classes --label space--> classes=[[synonyms], ...] (C)
        --model.predict(..., classes=...)--> pred_instances: bboxes (N, 4),
          scores (N,), labels (N,) [, masks: N COCO RLE]
        --here--> label_names (N), metainfo['classes']
"""
from typing import List, Optional, Tuple

import numpy as np
from mmdet.structures.mask import encode_mask_results
from torch import Tensor

from mmupv2.models.tasks.class_names import ClassNames
from mmupv2.structures import UPv2DataSample

from .base import (
    InputsType,
    SampleList,
    TaskCall,
    TaskInferencer,
    canonical_task,
)
from .drawing import drawable_instances


class LocalizationInferencer(TaskInferencer):
    """Detection and instance segmentation: the model's instances in the
    call's label space, with the name of each label.

    A model without a detection head (the Swin-B/L configs train one
    instance segmentation head for both, as the paper) answers detection
    with its instance segmentation head's boxes.
    """
    tasks = ('detection', 'instance_segmentation')

    def __call__(self, task: str, imgs: InputsType,
                 classes: Optional[ClassNames], batch_size: int,
                 vis_kwargs: dict) -> Tuple[SampleList, Optional[list]]:
        """See :meth:`UniPerceiverInferencer.detect` / ``segment``;
        returns the samples and the drawings (or None)."""
        engine = self.engine
        task = canonical_task(task)
        head = self.head_task(task)
        images = engine._inputs_to_list(imgs)
        preds, names = engine.predict_in_label_space(
            head, images, batch_size, classes, 'classes')
        for sample in preds:
            instances = sample.pred_instances
            instances.label_names = [
                names[i] for i in instances.labels.tolist()
            ]
            if head != task:  # boxes of the segmentation head
                del instances.masks
                sample.set_task(task)
        return preds, engine.visualize(images, preds, task=task,
                                       **vis_kwargs)

    def head_task(self, task: str) -> str:
        """The head that answers ``task``: its own, or for detection the
        instance segmentation head when the model has no detection
        head."""
        tasks = self.engine.model.tasks
        if (task == 'detection' and task not in tasks
                and 'instance_segmentation' in tasks):
            return self.engine._check_task('instance_segmentation')
        return self.engine._check_task(task)

    def from_call(self, task: str,
                  call: TaskCall) -> Tuple[SampleList, Optional[list]]:
        return self(task, call.inputs, call.classes, call.batch_size,
                    call.vis_kwargs)

    def draw(self, image: np.ndarray, name: str, sample: UPv2DataSample, *,
             out_file: Optional[str], show: bool, wait_time: float,
             pred_score_thr: float,
             texts: Optional[List[str]]) -> np.ndarray:
        """Boxes, masks and label names above ``pred_score_thr``, drawn by
        the visualizer's ``add_datasample``."""
        visualizer = self.engine.visualizer
        visualizer.dataset_meta = dict(classes=sample.metainfo.get('classes'))
        visualizer.add_datasample(
            name,
            image,
            drawable_instances(sample, pred_score_thr, image.shape[:2]),
            draw_gt=False,
            show=show,
            wait_time=wait_time,
            out_file=out_file,
            pred_score_thr=pred_score_thr)
        return visualizer.get_image()

    @staticmethod
    def to_dict(sample: UPv2DataSample) -> dict:
        """``labels``, ``label_names``, ``scores``, ``bboxes`` (xyxy) and
        ``masks`` (COCO RLE, ``counts`` as str)."""
        instances = sample.pred_instances.cpu()
        result = dict(
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
                    mask['counts'], bytes) else dict(mask) for mask in masks
            ]
        return result
