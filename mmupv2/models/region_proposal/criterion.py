# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Hungarian matching and losses of the binary Mask-DINO proposal network."""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from mmdet.structures import SampleList
from mmdet.structures.bbox import (
    bbox_cxcywh_to_xyxy,
    bbox_xyxy_to_cxcywh,
    get_box_tensor,
)
from mmdet.utils import OptConfigType, reduce_mean
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmupv2.registry import MODELS, TASK_UTILS

from .outputs import ProposalNetworkOutput, ProposalPredictions

#: Per image, ``(query_idx, gt_idx)``: LongTensors of equal length.
MatchedIndices = List[Tuple[Tensor, Tensor]]

#: The loss terms of one set of predictions, in key order.
LOSS_TERMS = ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice')


def _default_assigner() -> dict:
    """Mask DINO's matcher with Table 7's cost coefficients."""
    return dict(
        type='mmdet.HungarianAssigner',
        match_costs=[
            dict(type='mmdet.FocalLossCost', weight=2.0),
            dict(type='mmdet.BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0),
            dict(type='mmdet.CrossEntropyLossCost', weight=5.0,
                 use_sigmoid=True),
            dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0),
        ])


@MODELS.register_module()
class BinaryMaskDINOCriterion(BaseModule):
    """Match proposals to ground truth and compute the proposal losses.

    For every set of predictions (the N selected encoder tokens, each
    decoder layer, the O regional tokens) each image's proposals are matched
    one-to-one to its ground-truth instances by mmdet's
    :class:`~mmdet.models.task_modules.HungarianAssigner` with Mask DINO's
    costs (binary focal, L1 on normalised (cx, cy, w, h), GIoU, mask sigmoid
    cross-entropy and dice on ``num_points`` uniformly sampled points, as
    Mask2Former's matcher); the denoising queries are matched by
    construction (DINO). The losses of a set are then, with Table 7's
    weights by default:

    - ``loss_cls``: sigmoid focal loss of the objectness (matched = object),
      over all proposals;
    - ``loss_bbox`` / ``loss_iou``: L1 on normalised (cx, cy, w, h) / GIoU
      on pixel boxes, matched proposals;
    - ``loss_mask`` / ``loss_dice``: binary cross-entropy / dice on
      ``num_points`` points per matched mask, chosen by Mask2Former's
      importance sampling (``get_uncertain_point_coords_with_randomness``).

    All are averaged over the number of matched pairs (at least one,
    averaged over GPUs), as mmdet's DINO and Mask2Former do. Keys follow
    mmdet's DINO: ``loss_*`` for the last decoder layer, ``d{i}.loss_*`` for
    the others, ``enc_loss_*`` for the encoder output, ``dn_loss_*`` /
    ``d{i}.dn_loss_*`` for denoising, and ``region_loss_cls`` for the
    objectness of the regional tokens (the only loss of that set: their
    boxes and masks are the last layer's, already supervised).

    Denoising (DINO's contrastive denoising, Mask DINO's mask denoising):
    positive denoising queries get all five losses against the ground truth
    they were made from, negative ones only the objectness loss (as
    background).

    The objectness target is given to mmdet's ``FocalLoss`` in one-hot
    form, which selects its pure PyTorch path on every device.

    Args:
        assigner (dict, optional): mmdet ``HungarianAssigner`` config;
            defaults to the costs above with Table 7's coefficients (2, 5,
            2, 5, 5).
        loss_cls (dict, optional): defaults to ``FocalLoss`` (alpha 0.25,
            gamma 2) with weight 2.0.
        loss_bbox (dict, optional): defaults to ``L1Loss``, weight 5.0.
        loss_iou (dict, optional): defaults to ``GIoULoss``, weight 2.0.
        loss_mask (dict, optional): defaults to sigmoid ``CrossEntropyLoss``,
            weight 5.0.
        loss_dice (dict, optional): defaults to ``DiceLoss`` (naive, eps 1),
            weight 5.0.
        num_points (int): points per mask for matching and losses; 112 x
            112 = 12544 in the paper (Appendix B).
        oversample_ratio (float): Mask2Former's importance sampling (3.0).
        importance_sample_ratio (float): Mask2Former's (0.75).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 *,
                 assigner: OptConfigType = None,
                 loss_cls: OptConfigType = None,
                 loss_bbox: OptConfigType = None,
                 loss_iou: OptConfigType = None,
                 loss_mask: OptConfigType = None,
                 loss_dice: OptConfigType = None,
                 num_points: int = 112 * 112,
                 oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.assigner = TASK_UTILS.build(assigner or _default_assigner())
        self.loss_cls = MODELS.build(loss_cls or dict(
            type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=2.0))
        self.loss_bbox = MODELS.build(
            loss_bbox or dict(type='mmdet.L1Loss', loss_weight=5.0))
        self.loss_iou = MODELS.build(
            loss_iou or dict(type='mmdet.GIoULoss', loss_weight=2.0))
        self.loss_mask = MODELS.build(loss_mask or dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True,
            reduction='mean', loss_weight=5.0))
        self.loss_dice = MODELS.build(loss_dice or dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
            reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0))
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    # ------------------------------------------------------------------ API
    def forward(self, outputs: ProposalNetworkOutput,
                regional: ProposalPredictions,
                batch_data_samples: SampleList
                ) -> Tuple[Dict[str, Tensor], MatchedIndices]:
        """Compute all proposal losses and match the regional tokens.

        Args:
            outputs (ProposalNetworkOutput): the proposal network's output
                with auxiliary predictions (``for_loss=True``).
            regional (ProposalPredictions): the O regional tokens' fused
                objectness (B, O), boxes (B, O, 4) and masks (B, O, H/4,
                W/4).
            batch_data_samples (list[DetDataSample]): B samples with
                ``gt_instances`` (``bboxes`` (G, 4) xyxy pixels, ``masks``
                (G, h, w), bitmap or tensor) and ``img_shape`` /
                ``batch_input_shape`` meta information.

        Returns:
            tuple: the losses (dict of scalar tensors) and, per image,
            ``(token_idx, gt_idx)`` pairing regional tokens with ground-truth
            instances.
        """
        if outputs.encoder is None:
            raise ValueError('the proposal network output has no auxiliary '
                             'predictions; run it with for_loss=True')
        targets = self.get_targets(batch_data_samples)
        losses: Dict[str, Tensor] = {}
        sets = [('enc_', outputs.encoder)]
        last = len(outputs.decoder) - 1
        sets += [('' if i == last else f'd{i}.', preds)
                 for i, preds in enumerate(outputs.decoder)]
        for prefix, preds in sets:
            indices = self.match(preds, targets)
            losses.update(self._prefixed(prefix,
                                         self.loss(preds, indices, targets)))
        if outputs.denoising is not None:
            indices = self.denoising_indices(targets, outputs.dn_meta)
            for i, preds in enumerate(outputs.denoising):
                prefix = 'dn_' if i == last else f'd{i}.dn_'
                losses.update(
                    self._prefixed(prefix, self.loss(preds, indices,
                                                     targets)))
        region_indices = self.match(regional, targets)
        losses['region_loss_cls'] = self.loss_objectness(
            regional.objectness, region_indices)
        return losses, region_indices

    # ------------------------------------------------------------- targets
    @staticmethod
    def get_targets(batch_data_samples: SampleList) -> List[InstanceData]:
        """Collect each image's ground truth in the forms the losses use.

        Args:
            batch_data_samples (list[DetDataSample]): see :meth:`forward`.

        Returns:
            list[InstanceData]: per image, G instances with ``bboxes`` (G, 4)
            xyxy pixels, ``cxcywh`` (G, 4) normalised by ``img_shape``,
            ``labels`` (G,) zeros, ``masks`` (G, H, W) bool padded to
            ``batch_input_shape``, and meta ``img_shape``.
        """
        targets = []
        for sample in batch_data_samples:
            gt = sample.gt_instances
            if 'masks' not in gt:
                name = sample.metainfo.get('img_path', 'a sample')
                raise KeyError(
                    f"gt_instances of {name} have no masks; the proposal "
                    "network's loss needs instance masks (LoadAnnotations "
                    'with_mask=True)')
            bboxes = get_box_tensor(gt.bboxes).float()
            img_h, img_w = sample.img_shape
            pad_h, pad_w = sample.batch_input_shape
            masks = gt.masks
            if hasattr(masks, 'to_tensor'):  # mmdet BitmapMasks etc.
                masks = masks.to_tensor(torch.bool, bboxes.device)
            masks = masks.to(device=bboxes.device, dtype=torch.bool)
            if masks.shape[-2] > pad_h or masks.shape[-1] > pad_w:
                raise ValueError(
                    f'gt masks of shape {tuple(masks.shape[-2:])} exceed '
                    f'batch_input_shape {(pad_h, pad_w)}')
            masks = F.pad(masks, (0, pad_w - masks.shape[-1], 0,
                                  pad_h - masks.shape[-2]))
            factor = bboxes.new_tensor([img_w, img_h, img_w, img_h])
            target = InstanceData(
                metainfo=dict(img_shape=(img_h, img_w)),
                bboxes=bboxes,
                cxcywh=bbox_xyxy_to_cxcywh(bboxes / factor),
                labels=torch.zeros(
                    len(bboxes), dtype=torch.long, device=bboxes.device),
                masks=masks)
            targets.append(target)
        return targets

    # ------------------------------------------------------------ matching
    @torch.no_grad()
    def match(self, preds: ProposalPredictions,
              targets: List[InstanceData]) -> MatchedIndices:
        """Hungarian matching of each image's K proposals to its G truths.

        Args:
            preds (ProposalPredictions): (B, K, ...) predictions.
            targets (list[InstanceData]): from :meth:`get_targets`.

        Returns:
            list[tuple[Tensor, Tensor]]: per image ``(query_idx, gt_idx)``,
            min(K, G) pairs.
        """
        indices = []
        for b, target in enumerate(targets):
            num_queries, num_gts = preds.boxes.shape[1], len(target)
            empty = preds.boxes.new_zeros(0, dtype=torch.long)
            if num_gts == 0:
                indices.append((empty, empty))
                continue
            img_h, img_w = target.img_shape
            factor = preds.boxes.new_tensor([img_w, img_h, img_w, img_h])
            point_coords = torch.rand(
                1, self.num_points, 2, device=preds.masks.device)
            pred_points = point_sample(
                preds.masks[b].unsqueeze(1).float(),
                point_coords.expand(num_queries, -1, -1)).squeeze(1)
            gt_points = point_sample(
                target.masks.unsqueeze(1).float(),
                point_coords.expand(num_gts, -1, -1)).squeeze(1)
            assign_result = self.assigner.assign(
                pred_instances=InstanceData(
                    scores=preds.objectness[b].unsqueeze(-1).float(),
                    bboxes=bbox_cxcywh_to_xyxy(preds.boxes[b].float()) *
                    factor,
                    masks=pred_points),
                gt_instances=InstanceData(
                    labels=target.labels, bboxes=target.bboxes,
                    masks=gt_points),
                img_meta=dict(img_shape=target.img_shape))
            query_idx = torch.nonzero(
                assign_result.gt_inds > 0, as_tuple=False).squeeze(1)
            indices.append((query_idx, assign_result.gt_inds[query_idx] - 1))
        return indices

    @staticmethod
    def denoising_indices(targets: List[InstanceData],
                          dn_meta: Dict[str, int]) -> MatchedIndices:
        """The positive denoising queries and their ground truths (DINO's
        layout: in each group, the first G_max queries are the positive
        copies of the G_max truths, the next G_max the negative ones).

        Args:
            targets (list[InstanceData]): from :meth:`get_targets`.
            dn_meta (dict): ``num_denoising_queries`` and
                ``num_denoising_groups`` of ``CdnQueryGenerator``.

        Returns:
            list[tuple[Tensor, Tensor]]: per image ``(query_idx, gt_idx)``,
            ``num_groups * G`` pairs.
        """
        num_groups = dn_meta['num_denoising_groups']
        group_size = dn_meta['num_denoising_queries'] // num_groups
        indices = []
        for target in targets:
            gt_idx = torch.arange(len(target), device=target.labels.device)
            starts = torch.arange(
                num_groups, device=gt_idx.device) * group_size
            query_idx = (starts[:, None] + gt_idx[None]).flatten()
            indices.append((query_idx, gt_idx.repeat(num_groups)))
        return indices

    # --------------------------------------------------------------- losses
    def loss(self, preds: ProposalPredictions, indices: MatchedIndices,
             targets: List[InstanceData]) -> Dict[str, Tensor]:
        """The five losses of one set of predictions.

        Args:
            preds (ProposalPredictions): (B, K, ...) predictions.
            indices (list[tuple[Tensor, Tensor]]): per image
                ``(query_idx, gt_idx)``.
            targets (list[InstanceData]): from :meth:`get_targets`.

        Returns:
            dict[str, Tensor]: :data:`LOSS_TERMS` -> scalar.
        """
        avg_factor = self._num_matched(indices, preds.boxes)
        batch_idx = torch.cat([
            torch.full_like(query_idx, b)
            for b, (query_idx, _) in enumerate(indices)
        ])
        query_idx = torch.cat([query_idx for query_idx, _ in indices])
        pred_boxes = preds.boxes[batch_idx, query_idx].float()
        gt_cxcywh = torch.cat(
            [t.cxcywh[gt_idx] for t, (_, gt_idx) in zip(targets, indices)])
        factors = torch.cat([
            pred_boxes.new_tensor(t.img_shape[::-1] * 2).expand(
                len(gt_idx), 4) for t, (_, gt_idx) in zip(targets, indices)
        ])
        loss_bbox = self.loss_bbox(
            pred_boxes, gt_cxcywh, avg_factor=avg_factor)
        loss_iou = self.loss_iou(
            bbox_cxcywh_to_xyxy(pred_boxes) * factors,
            bbox_cxcywh_to_xyxy(gt_cxcywh) * factors,
            avg_factor=avg_factor)
        pred_masks = preds.masks[batch_idx, query_idx]
        gt_masks = torch.cat(
            [t.masks[gt_idx] for t, (_, gt_idx) in zip(targets, indices)])
        loss_mask, loss_dice = self.loss_masks(pred_masks, gt_masks,
                                               avg_factor)
        # Keep every prediction in the graph when nothing is matched.
        zero = 0.0 * (preds.boxes.sum() + preds.masks.sum())
        return dict(
            loss_cls=self.loss_objectness(preds.objectness, indices),
            loss_bbox=loss_bbox + zero,
            loss_iou=loss_iou + zero,
            loss_mask=loss_mask + zero,
            loss_dice=loss_dice + zero)

    def loss_objectness(self, objectness: Tensor,
                        indices: MatchedIndices) -> Tensor:
        """Sigmoid focal loss of the objectness; matched proposals are
        objects, all others background.

        Args:
            objectness (Tensor): (B, K) logits.
            indices (list[tuple[Tensor, Tensor]]): per image matches.

        Returns:
            Tensor: scalar.
        """
        target = torch.zeros_like(objectness)
        for b, (query_idx, _) in enumerate(indices):
            target[b, query_idx] = 1.0
        return self.loss_cls(
            objectness.reshape(-1, 1).float(),
            target.reshape(-1, 1).float(),
            avg_factor=self._num_matched(indices, objectness))

    def loss_masks(self, pred_masks: Tensor, gt_masks: Tensor,
                   avg_factor: float) -> Tuple[Tensor, Tensor]:
        """Mask BCE and dice on importance-sampled points (Mask2Former).

        Args:
            pred_masks (Tensor): (M, H/4, W/4) logits of matched proposals.
            gt_masks (Tensor): (M, H, W) bool, their ground truths.
            avg_factor (float): matched pairs in the batch (>= 1).

        Returns:
            tuple[Tensor, Tensor]: scalar BCE and dice losses.
        """
        if len(pred_masks) == 0:
            zero = pred_masks.sum()
            return zero, zero
        with torch.no_grad():
            point_coords = get_uncertain_point_coords_with_randomness(
                pred_masks.unsqueeze(1).float(), None, self.num_points,
                self.oversample_ratio, self.importance_sample_ratio)
            gt_points = point_sample(gt_masks.unsqueeze(1).float(),
                                     point_coords).squeeze(1)
        pred_points = point_sample(pred_masks.unsqueeze(1).float(),
                                   point_coords).squeeze(1)
        loss_dice = self.loss_dice(
            pred_points, gt_points, avg_factor=avg_factor)
        loss_mask = self.loss_mask(
            pred_points.reshape(-1),
            gt_points.reshape(-1),
            avg_factor=avg_factor * self.num_points)
        return loss_mask, loss_dice

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _num_matched(indices: MatchedIndices, like: Tensor) -> float:
        """Matched pairs of the batch, averaged over GPUs, at least 1."""
        num = sum(len(query_idx) for query_idx, _ in indices)
        return max(reduce_mean(like.new_tensor(float(num))).item(), 1.0)

    @staticmethod
    def _prefixed(prefix: str,
                  losses: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {prefix + key: value for key, value in losses.items()}
