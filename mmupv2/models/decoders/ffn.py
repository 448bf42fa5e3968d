# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The dense feed-forward network of the unified decoder (MoE ablation)."""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn.bricks.transformer import FFN
from torch import Tensor


class DenseFFN(nn.Module):
    """BERT's FFN (Linear-GELU-Linear with dropout), mmcv's
    :class:`~mmcv.cnn.bricks.transformer.FFN` without its residual, behind
    the interface of :class:`~.moe_ffn.ConditionalMoEFFN` (routing
    arguments are accepted and ignored).

    Args:
        embed_dims: model width D.
        feedforward_channels: hidden width F.
        dropout: dropout after the activation and after the output.
    """

    def __init__(self,
                 embed_dims: int,
                 feedforward_channels: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            act_cfg=dict(type='GELU'),
            ffn_drop=dropout,
            add_identity=False)

    def forward(self,
                x: Tensor,
                spans: Optional[Sequence[Tuple[int, int, int]]] = None,
                attributes: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            x (Tensor): (B, L, D).
            spans, attributes: ignored.

        Returns:
            Tensor: (B, L, D).
        """
        return self.ffn(x)
