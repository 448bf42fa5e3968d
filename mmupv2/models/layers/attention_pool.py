# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""CLIP-style attention pooling over a padded feature map."""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmupv2.registry import MODELS


@MODELS.register_module()
class AttentionPool2d(BaseModule):
    """Pool a feature map into one token with multi-head attention, as
    CLIP's ``AttentionPool2d`` (Radford et al. 2021, ``model.py``).

    The query is the mean of the valid tokens; the keys and values are that
    mean followed by the tokens; all of them carry positional encodings; the
    attended result goes through an output projection (``c_proj`` in CLIP).

    Two choices differ from CLIP, whose input size is fixed: the positions of
    the tokens come from the caller (the sine encoding of the map, so any
    size works), and only the mean token has a learned positional
    embedding. Padding is honoured: the mean is taken over valid tokens only
    and padded keys are masked out, so the result does not depend on how
    much padding the batch adds.

    Args:
        embed_dims (int): token dimension d.
        num_heads (int): attention heads; d must be divisible by it.
        out_dims (int, optional): output dimension; defaults to d.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 out_dims: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads})')
        self.mean_pos = nn.Parameter(torch.zeros(embed_dims))
        self.attn = nn.MultiheadAttention(
            embed_dims, num_heads, batch_first=True)
        self.out_proj = nn.Linear(embed_dims, out_dims or embed_dims)
        nn.init.normal_(self.mean_pos, std=embed_dims**-0.5)

    def forward(self,
                tokens: Tensor,
                pos: Tensor,
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Pool ``tokens``.

        Args:
            tokens (Tensor): (B, L, d) flattened feature map.
            pos (Tensor): (B, L, d) positional encoding of the tokens.
            padding_mask (Tensor, optional): (B, L) bool, True = padding.
                Every image must have at least one valid token.

        Returns:
            Tensor: (B, out_dims) pooled token.
        """
        if padding_mask is None:
            mean = tokens.mean(dim=1, keepdim=True)
            key_padding_mask = None
        else:
            valid = (~padding_mask).unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * valid).sum(1, keepdim=True) / valid.sum(
                1, keepdim=True).clamp(min=1)
            key_padding_mask = torch.cat(
                [padding_mask.new_zeros(padding_mask.shape[0], 1),
                 padding_mask], dim=1)
        query = mean + self.mean_pos
        keys = torch.cat([query, tokens + pos], dim=1)
        pooled, _ = self.attn(
            query, keys, keys, key_padding_mask=key_padding_mask,
            need_weights=False)
        return self.out_proj(pooled[:, 0])
