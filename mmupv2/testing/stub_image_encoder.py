# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A tiny stand-in for the region-proposal image encoder (tests, smoke
runs) that honours
:class:`~mmupv2.models.image_encoders.ImageEncoderOutput`."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
from mmengine.model import BaseModule
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmupv2.models.image_encoders import (
    ImageEncoderOutput,
    check_loss_targets,
)
from mmupv2.registry import MODELS


@MODELS.register_module()
class StubImageEncoder(BaseModule):
    """Patchify convs and learned queries with the real encoder's output
    shapes.

    ::

        image (B, 3, H, W) -> conv 4x4/4 -> F0 (B, C, H/4, W/4)
                           -> conv 4x4/4 -> F_L (B, C, H/16, W/16)
        global tokens = [M' attention pools of F_L; flatten(F_L)]
        regional tokens = O queries cross-attending to F_L
        boxes = sigmoid(Linear), objectness = Linear,
        masks = <Linear(query), F0> on the stride-4 grid

    With ``with_loss=True`` (the caller asks, as of the real encoder),
    each image's regional tokens are matched to its ground-truth boxes by
    the Hungarian algorithm on the L1 distance of normalised cxcywh boxes
    (``matched_indices``), and ``loss_stub_bbox`` (L1 of the matched boxes)
    is returned so the box head learns something.

    Args:
        embed_dims: C (the real encoder's d = 256).
        num_regions: O.
        num_global_pools: M'.
    """

    def __init__(self,
                 *,
                 embed_dims: int = 256,
                 num_regions: int = 8,
                 num_global_pools: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.stem = nn.Conv2d(3, embed_dims, 4, 4)
        self.down = nn.Conv2d(embed_dims, embed_dims, 4, 4)
        self.pool_queries = nn.Parameter(
            torch.randn(num_global_pools, embed_dims) * 0.02)
        self.region_queries = nn.Parameter(
            torch.randn(num_regions, embed_dims) * 0.02)
        self.box_head = nn.Linear(embed_dims, 4)
        self.objectness_head = nn.Linear(embed_dims, 1)
        self.mask_embed = nn.Linear(embed_dims, embed_dims)

    @staticmethod
    def _attend(queries: Tensor, feats: Tensor,
                padding: Tensor) -> Tensor:
        """queries (Q, C) over feats (B, N, C) with padding (B, N) ->
        (B, Q, C)."""
        scale = feats.shape[-1]**-0.5
        logits = torch.einsum('qc,bnc->bqn', queries, feats) * scale
        logits = logits.masked_fill(padding[:, None], float('-inf'))
        return torch.einsum('bqn,bnc->bqc', logits.softmax(-1), feats)

    @staticmethod
    def _padding(data_samples: Optional[Sequence], shape: Tuple[int, int],
                 stride: int, device: torch.device) -> Tensor:
        """(B, h*w) True where a stride-``stride`` cell lies outside the
        unpadded image."""
        h, w = shape
        masks = []
        for sample in data_samples or [None]:
            img_h, img_w = (sample.metainfo.get('img_shape', (h * stride,
                                                              w * stride))
                            if sample is not None else (h * stride,
                                                        w * stride))[:2]
            rows = torch.arange(h, device=device) * stride >= img_h
            cols = torch.arange(w, device=device) * stride >= img_w
            masks.append((rows[:, None] | cols[None, :]).flatten())
        return torch.stack(masks)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[Sequence] = None,
                with_loss: bool = False) -> ImageEncoderOutput:
        """
        Args:
            inputs (Tensor): (B, 3, H, W) with H, W multiples of 16.
            data_samples: the batch's samples (``img_shape``,
                ``gt_instances``).
            with_loss: match and compute the loss (needs
                ``gt_instances.bboxes`` in every sample), as the real
                ``RegionProposalImageEncoder``.

        Returns:
            ImageEncoderOutput: O regional tokens, M' + H/16 * W/16 global
            tokens, masks on the H/4 x W/4 grid.
        """
        f0 = self.stem(inputs.to(self.stem.weight.dtype))  # (B, C, H/4, W/4)
        fl = self.down(F.gelu(f0))  # (B, C, H/16, W/16)
        bsz, _, h, w = fl.shape
        flat = fl.flatten(2).transpose(1, 2)  # (B, h*w, C)
        padding = self._padding(data_samples, (h, w), 16, inputs.device)
        if padding.shape[0] != bsz:
            padding = padding[:1].expand(bsz, -1)
        pools = self._attend(self.pool_queries, flat, padding)
        regions = self._attend(self.region_queries, flat,
                               padding) + self.region_queries
        boxes = self.box_head(regions).sigmoid()  # (B, O, 4) cxcywh
        masks = torch.einsum('boc,bchw->bohw', self.mask_embed(regions), f0)
        out = ImageEncoderOutput(
            regional_tokens=regions,
            regional_boxes=boxes,
            regional_masks=masks,
            regional_objectness=self.objectness_head(regions)[..., 0],
            global_tokens=torch.cat([pools, flat], dim=1),
            global_padding_mask=torch.cat(
                [padding.new_zeros(bsz, pools.shape[1]), padding], dim=1))
        if with_loss:
            check_loss_targets(data_samples)
            out.matched_indices, out.losses = self._match(boxes, data_samples)
        return out

    @staticmethod
    def _match(boxes: Tensor, data_samples: Sequence
               ) -> Tuple[List[Tuple[Tensor, Tensor]], dict]:
        matched, l1 = [], []
        for pred, sample in zip(boxes, data_samples):
            h, w = sample.metainfo['img_shape'][:2]
            gt = sample.gt_instances.bboxes
            gt = getattr(gt, 'tensor', gt).to(pred)
            gt = bbox_xyxy_to_cxcywh(gt) / pred.new_tensor([w, h, w, h])
            cost = torch.cdist(pred.detach(), gt, p=1).cpu()
            rows, cols = linear_sum_assignment(cost.numpy())
            token_idx = torch.as_tensor(rows, dtype=torch.long,
                                        device=pred.device)
            gt_idx = torch.as_tensor(cols, dtype=torch.long,
                                     device=pred.device)
            matched.append((token_idx, gt_idx))
            l1.append((pred[token_idx] - gt[gt_idx]).abs().sum(-1))
        l1 = torch.cat(l1)
        loss = l1.mean() if l1.numel() else boxes.sum() * 0
        return matched, dict(loss_stub_bbox=loss)
