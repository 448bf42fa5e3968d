# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Instance segmentation: detection whose proposals also give masks."""
from mmupv2.registry import MODELS

from .detection import DetectionTask


@MODELS.register_module()
class InstanceSegmentationTask(DetectionTask):
    """Instance segmentation (paper Sec. 4.3): the formulation, loss and
    scores of :class:`~.detection.DetectionTask`; each kept proposal's mask
    ``q_mask`` (the Mask-DINO branch of the image encoder) is the
    localisation output besides its box.

    Predictions: ``pred_instances`` with ``bboxes`` (N, 4), ``scores``
    (N,), ``labels`` (N,) and ``masks``, N COCO RLE dicts of (H, W) masks
    thresholded at ``mask_threshold`` on the sigmoid of the upsampled mask
    logits (see :class:`~.detection.DetectionTask`).
    """
    task = 'instance_segmentation'
    with_mask = True
