# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Multi-head self-attention with an optional key/value cache."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class CachedSelfAttention(nn.Module):
    """BERT's multi-head self-attention on ``F.scaled_dot_product_attention``
    that can continue from cached keys/values.

    mmcv's / PyTorch's ``MultiheadAttention`` cannot extend a cache, which
    incremental decoding needs, so this one keeps q/k/v in one projection.

    Args:
        embed_dims: model width D.
        num_heads: H; must divide D.
        attn_drop: dropout on attention weights (training only).
        proj_drop: dropout after the output projection.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        x: Tensor,
        attn_mask: Optional[Tensor] = None,
        past: Optional[Tuple[Tensor, Tensor]] = None
    ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """
        Args:
            x (Tensor): (B, Lq, D) the new tokens.
            attn_mask (Tensor, optional): (B or 1, 1, Lq, Lp + Lq) bool, True
                where attention is allowed.
            past (tuple[Tensor, Tensor], optional): cached keys and values,
                each (B, H, Lp, D/H).

        Returns:
            tuple: the output (B, Lq, D) and the keys/values of all
            ``Lp + Lq`` tokens, each (B, H, Lp + Lq, D/H).
        """
        bsz, length, dims = x.shape
        q, k, v = self.qkv(x).view(bsz, length, 3, self.num_heads,
                                   dims // self.num_heads).permute(
                                       2, 0, 3, 1, 4)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.attn_drop if self.training else 0.0)
        out = out.transpose(1, 2).reshape(bsz, length, dims)
        return self.proj_drop(self.proj(out)), (k, v)
