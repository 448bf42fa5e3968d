# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The image encoder alone as a class-agnostic proposal detector."""
from typing import Tuple

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from mmupv2.registry import MODELS

from ..image_encoders import RegionProposalImageEncoder
from ..tasks.mask_paste import decode_rle_masks
from ..tasks.proposal_postprocess import (
    output_shape,
    proposal_boxes,
    proposal_masks,
)


@MODELS.register_module()
class ClassAgnosticProposer(BaseDetector):
    """Evaluate the proposals of :class:`RegionProposalImageEncoder` as a
    one-class ("object") detector and instance segmenter.

    ``loss`` trains the proposal network alone (its losses only);
    ``predict`` returns mmdet-style ``pred_instances`` that mmdet's
    ``CocoMetric`` reads with ``classes=('object', )`` and an annotation
    file whose every instance is of that category (see
    ``tests/test_models/test_detectors/test_class_agnostic_proposer.py``
    for the conversion): ``bboxes`` (K, 4) xyxy in original-image pixels,
    ``scores`` (K,) the sigmoid of the regional objectness, ``labels`` (K,)
    zeros and ``masks`` (K, h, w) bool of the original image. Boxes and
    masks are mapped to pixels exactly as
    :class:`~mmupv2.models.tasks.DetectionTask` maps them
    (:mod:`~mmupv2.models.tasks.proposal_postprocess`): an image gets the
    same proposals alone and padded in a batch.

    Args:
        image_encoder (dict): config of the image encoder.
        data_preprocessor (dict, optional): e.g. mmdet's
            ``DetDataPreprocessor`` with ``pad_mask=True``.
        max_per_img (int): proposals kept per image, by score (COCO's 100).
        mask_threshold (float): probability above which a pixel is in the
            mask.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 *,
                 image_encoder: ConfigType,
                 data_preprocessor: OptConfigType = None,
                 max_per_img: int = 100,
                 mask_threshold: float = 0.5,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.image_encoder: RegionProposalImageEncoder = MODELS.build(
            image_encoder)
        self.max_per_img = max_per_img
        self.mask_threshold = mask_threshold

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone and neck maps, (B, d, H/s, W/s) for s = 4 ... 64."""
        return self.image_encoder.extract_feat(batch_inputs)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """The proposal network's losses.

        Args:
            batch_inputs (Tensor): (B, 3, H, W).
            batch_data_samples (list[DetDataSample]): with ``gt_instances``
                (boxes and masks).

        Returns:
            dict[str, Tensor]: see ``BinaryMaskDINOCriterion``.
        """
        return self.image_encoder(
            batch_inputs, batch_data_samples, with_loss=True).losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Predict class-agnostic instances.

        Args:
            batch_inputs (Tensor): (B, 3, H, W).
            batch_data_samples (list[DetDataSample]): with ``img_shape``,
                ``batch_input_shape``, ``ori_shape``, ``scale_factor``.
            rescale (bool): return boxes and masks in the original image
                (``ori_shape``) rather than the resized input
                (``img_shape``).

        Returns:
            list[DetDataSample]: the samples with ``pred_instances``.
        """
        out = self.image_encoder(
            batch_inputs, batch_data_samples, with_loss=False)
        results = [
            self._postprocess(objectness, boxes, masks, sample.metainfo,
                              rescale) for objectness, boxes, masks, sample
            in zip(out.regional_objectness, out.regional_boxes,
                   out.regional_masks, batch_data_samples)
        ]
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> Tuple[Tensor, ...]:
        """Raw regional objectness (B, O), boxes (B, O, 4) and mask logits
        (B, O, H/4, W/4)."""
        out = self.image_encoder(
            batch_inputs, batch_data_samples, with_loss=False)
        return (out.regional_objectness, out.regional_boxes,
                out.regional_masks)

    def _postprocess(self, objectness: Tensor, boxes: Tensor, masks: Tensor,
                     img_meta: dict, rescale: bool) -> InstanceData:
        """One image's top ``max_per_img`` proposals in pixels.

        Args:
            objectness (Tensor): (O,) logits.
            boxes (Tensor): (O, 4) normalised (cx, cy, w, h).
            masks (Tensor): (O, H/4, W/4) logits on the padded grid.
            img_meta (dict): ``img_shape``, ``batch_input_shape`` and, for
                ``rescale``, ``ori_shape`` and ``scale_factor``.
            rescale (bool): to the original image.

        Returns:
            InstanceData: ``bboxes``, ``scores``, ``labels``, ``masks``.
        """
        scores, keep = objectness.sigmoid().topk(
            min(self.max_per_img, len(objectness)))
        rles = proposal_masks(masks, keep, img_meta, self.mask_threshold,
                              rescale)
        return InstanceData(
            bboxes=proposal_boxes(boxes[keep], img_meta, rescale),
            scores=scores,
            labels=torch.zeros_like(keep),
            masks=decode_rle_masks(rles, output_shape(img_meta, rescale)).to(
                masks.device))
