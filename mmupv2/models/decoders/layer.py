# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""One layer of the unified decoder."""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath
from torch import Tensor

from .attention import CachedSelfAttention
from .ffn import DenseFFN
from .moe_ffn import ConditionalMoEFFN


class UnifiedDecoderLayer(nn.Module):
    """A BERT layer in pre-LayerNorm form with stochastic depth::

        x = x + DropPath(Attn(LN(x)))
        x = x + DropPath(FFN(LN(x), route))

    The paper takes the BERT-base setting and stochastic depth 0.1 and says
    nothing about the norm placement; pre-LN is chosen because stochastic
    depth drops whole residual branches, which pre-LN keeps as a clean
    identity path (and the paper reports no need for layer-scale).

    Args:
        embed_dims: model width D.
        num_heads: attention heads.
        feedforward_channels: FFN hidden width.
        drop_path: stochastic-depth rate of both branches.
        dropout: dropout in attention output and FFN.
        attn_drop: dropout on attention weights.
        moe_cfg: kwargs of :class:`~.moe_ffn.ConditionalMoEFFN`
            (``num_experts``, ``top_k``, ``noise_std``, ...); None for a dense
            FFN.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 drop_path: float = 0.0,
                 dropout: float = 0.0,
                 attn_drop: float = 0.0,
                 moe_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = CachedSelfAttention(embed_dims, num_heads, attn_drop,
                                        dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        if moe_cfg is None:
            self.ffn = DenseFFN(embed_dims, feedforward_channels, dropout)
        else:
            self.ffn = ConditionalMoEFFN(
                embed_dims, feedforward_channels, dropout=dropout, **moe_cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else (
            nn.Identity())

    def forward(
        self,
        x: Tensor,
        spans: Sequence[Tuple[int, int, int]],
        attributes: Tensor,
        attn_mask: Optional[Tensor] = None,
        past: Optional[Tuple[Tensor, Tensor]] = None
    ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """
        Args:
            x (Tensor): (B, L, D) the (new) tokens.
            spans (Sequence[tuple[int, int, int]]): ``(start, end, row)``
                segment spans over ``x`` with their attribute rows.
            attributes (Tensor): (A, 8) the attribute table.
            attn_mask (Tensor, optional): (B or 1, 1, L, Lp + L) bool.
            past (tuple[Tensor, Tensor], optional): cached keys/values
                (B, H, Lp, D/H).

        Returns:
            tuple: (B, L, D) output and this layer's keys/values
            (B, H, Lp + L, D/H).
        """
        attn_out, kv = self.attn(self.norm1(x), attn_mask, past)
        x = x + self.drop_path(attn_out)
        x = x + self.drop_path(self.ffn(self.norm2(x), spans, attributes))
        return x, kv
