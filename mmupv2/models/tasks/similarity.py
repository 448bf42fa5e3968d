# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Eq. 6: cosine similarity over a learnable temperature."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class ScaledCosineSimilarity(nn.Module):
    """``logits = normalize(q) @ normalize(t).T * exp(logit_scale)``.

    As Uni-Perceiver v1 (``EmbedClsAsRetrievalPredictor``): one learnable
    ``logit_scale = log(1 / tau)`` per task type, initialised from
    ``tau = 0.07``, and the scale ``exp(logit_scale)`` capped at 100 (above
    the cap it is a constant, so ``logit_scale`` gets no gradient).

    Args:
        init_temperature: initial tau.
        max_scale: cap of ``exp(logit_scale)``.
    """

    def __init__(self,
                 init_temperature: float = 0.07,
                 max_scale: float = 100.0) -> None:
        super().__init__()
        if init_temperature <= 0:
            raise ValueError(
                f'init_temperature must be > 0, got {init_temperature}')
        self.max_scale = max_scale
        self.logit_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / init_temperature)))

    @property
    def scale(self) -> Tensor:
        """() the clamped ``exp(logit_scale)``."""
        return self.logit_scale.exp().clamp(max=self.max_scale)

    def forward(self, queries: Tensor, targets: Tensor) -> Tensor:
        """
        Args:
            queries (Tensor): (..., D) decoder outputs of the inputs.
            targets (Tensor): (N, D) decoder outputs of the targets.

        Returns:
            Tensor: (..., N) logits.
        """
        q = F.normalize(queries, dim=-1)
        t = F.normalize(targets, dim=-1).to(q.dtype)
        return torch.matmul(q, t.t()) * self.scale.to(q.dtype)
