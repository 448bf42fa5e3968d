# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Fuse each proposal's semantics, box and mask into one token (Eq. 2/9)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer.utils import coordinate_to_encoding
from mmengine.model import BaseModule, bias_init_with_prob
from torch import Tensor, nn

from mmupv2.models.region_proposal import ProposalPredictions
from mmupv2.registry import MODELS


@MODELS.register_module()
class ProposalFusion(BaseModule):
    """``q_proposal = q_sem + B(q_box) + M(q_mask)``, then keep the top-O.

    Shapes (B images, N proposals, O kept, d = embed_dims)::

        q_sem  (B, N, d)        the last decoder layer's hidden states
        q_box  (B, N, 4)  --detach--> sine encoding (B, N, 4 * box_feats)
                          --Linear--> (B, N, d)                       B(.)
        q_mask (B, N, H/4, W/4) --detach, sigmoid, crop to the image,
                          adaptive avg pool--> (B, N, 28, 28)
                          --flatten, Linear--> (B, N, d)              M(.)
        sum --> q_proposal (B, N, d) --Linear--> objectness (B, N)
        top-O by objectness --> tokens (B, O, d) with their box, mask,
                                objectness

    Choices where the paper is silent: the box encoding is mmdet's
    ``coordinate_to_encoding`` (DINO's sine encoding of (cx, cy, w, h), 128
    features per coordinate); the mask is pooled as probabilities (sigmoid),
    over the image's own region of the stride-4 grid (not the batch
    padding), so a token does not depend on how much the batch pads; the
    objectness that ranks the proposals is a linear layer on
    ``q_proposal`` ("we predict objectness for each proposal q_proposal",
    Appendix A), trained by the criterion's ``region_loss_cls``.

    Args:
        embed_dims (int): d.
        num_proposals (int): O, proposals kept (200 in the paper).
        mask_pool_size (int): side of the pooled mask (28).
        box_feats (int): sine features per box coordinate (128).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 *,
                 embed_dims: int = 256,
                 num_proposals: int = 200,
                 mask_pool_size: int = 28,
                 box_feats: int = 128,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_proposals = num_proposals
        self.mask_pool_size = mask_pool_size
        self.box_feats = box_feats
        self.box_proj = nn.Linear(4 * box_feats, embed_dims)
        self.mask_proj = nn.Linear(mask_pool_size**2, embed_dims)
        self.objectness = nn.Linear(embed_dims, 1)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.objectness.bias, bias_init_with_prob(0.01))

    def forward(self, query: Tensor, proposals: ProposalPredictions,
                valid_mask_shapes: Sequence[Tuple[int, int]]
                ) -> Tuple[Tensor, ProposalPredictions, Tensor]:
        """Fuse and select.

        Args:
            query (Tensor): (B, N, d) ``q_sem``.
            proposals (ProposalPredictions): their (B, N) objectness, (B, N,
                4) boxes and (B, N, H/4, W/4) mask logits.
            valid_mask_shapes (Sequence[tuple[int, int]]): per image, the
                (h, w) of its own region on the stride-4 grid.

        Returns:
            tuple: ``tokens`` (B, O, d); the selected proposals
            (:class:`ProposalPredictions` with the fused objectness, (B,
            O)); ``keep`` (B, O) their indices among the N.
        """
        num_queries = query.shape[1]
        if self.num_proposals > num_queries:
            raise ValueError(f'num_proposals={self.num_proposals} exceeds '
                             f'the {num_queries} queries of the network')
        box_embed = self.box_proj(
            coordinate_to_encoding(
                proposals.boxes.detach(), num_feats=self.box_feats))
        mask_embed = self.mask_proj(
            self.pool_masks(proposals.masks.detach(),
                            valid_mask_shapes).flatten(2))
        tokens = query + box_embed + mask_embed
        objectness = self.objectness(tokens)[..., 0]
        keep = objectness.topk(self.num_proposals, dim=1)[1]
        selected = ProposalPredictions(
            objectness=objectness.gather(1, keep),
            boxes=_gather(proposals.boxes, keep),
            masks=_gather(proposals.masks, keep))
        return _gather(tokens, keep), selected, keep

    def pool_masks(self, masks: Tensor,
                   valid_mask_shapes: Sequence[Tuple[int, int]]) -> Tensor:
        """Average-pool each image's mask probabilities over its own region.

        Args:
            masks (Tensor): (B, N, H/4, W/4) logits.
            valid_mask_shapes (Sequence[tuple[int, int]]): per image (h, w).

        Returns:
            Tensor: (B, N, s, s) with s = ``mask_pool_size``.
        """
        pooled: List[Tensor] = [
            F.adaptive_avg_pool2d(m[:, :h, :w].sigmoid(), self.mask_pool_size)
            for m, (h, w) in zip(masks, valid_mask_shapes)
        ]
        return torch.stack(pooled)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x[b, index[b]]`` for x of shape (B, N, ...) and index (B, O)."""
    return x[torch.arange(len(x), device=x.device)[:, None], index]
