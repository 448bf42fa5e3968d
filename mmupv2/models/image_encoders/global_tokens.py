# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The global representation of an image (paper Eq. 3)."""
from typing import Optional, Tuple

import torch
from mmdet.models.layers import SinePositionalEncoding
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from mmupv2.models.layers import AttentionPool2d
from mmupv2.registry import MODELS


@MODELS.register_module()
class GlobalTokens(BaseModule):
    """``q_global = Concat(AttnPool_1(F_L), ..., AttnPool_M'(F_L),
    Flatten(F_L))``.

    Shapes (B images, d = embed_dims, M' = num_pools)::

        F_L (B, d, h, w), padding mask (B, h, w)
          | sine positions (mmdet's SinePositionalEncoding, normalised over
          | each image's valid region)
          +--> M' independent AttentionPool2d (CLIP-style) --> (B, M', d)
          +--> flatten --> (B, h*w, d)
        tokens (B, M' + h*w, d), padding mask (B, M' + h*w)

    The positions are used inside the pools only; the flattened map is
    concatenated as it is, as Eq. 3 writes it.

    Args:
        embed_dims (int): d.
        num_pools (int): M', 10 in the paper.
        num_heads (int): attention heads of each pool.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 *,
                 embed_dims: int = 256,
                 num_pools: int = 10,
                 num_heads: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_pools = num_pools
        self.positional_encoding = SinePositionalEncoding(
            num_feats=embed_dims // 2, normalize=True)
        self.pools = ModuleList([
            AttentionPool2d(embed_dims, num_heads) for _ in range(num_pools)
        ])

    def forward(self, feat: Tensor,
                padding_mask: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor]:
        """Pool and flatten ``F_L``.

        Args:
            feat (Tensor): (B, d, h, w) the last-scale map.
            padding_mask (Tensor, optional): (B, h, w) bool, True =
                padding; None when nothing is padded.

        Returns:
            tuple[Tensor, Tensor]: tokens (B, M' + h*w, d) and their padding
            mask (B, M' + h*w), bool, never True for the M' pooled tokens.
        """
        bs = feat.shape[0]
        if padding_mask is None:
            padding_mask = feat.new_zeros((bs, ) + feat.shape[-2:],
                                          dtype=torch.bool)
        pos = self.positional_encoding(padding_mask).flatten(2).transpose(
            1, 2)
        tokens = feat.flatten(2).transpose(1, 2)
        token_mask = padding_mask.flatten(1)
        pooled = torch.stack(
            [pool(tokens, pos, token_mask) for pool in self.pools], dim=1)
        pooled_mask = token_mask.new_zeros(bs, self.num_pools)
        return (torch.cat([pooled, tokens], dim=1),
                torch.cat([pooled_mask, token_mask], dim=1))
