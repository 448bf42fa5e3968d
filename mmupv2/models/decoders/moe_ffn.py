# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Conditional MoE feed-forward network with attribute-level routing
(Uni-Perceiver-MoE, paper Sec. 3 and 4.3)."""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .attributes import ATTRIBUTE_DIMS


class AttributeGate(nn.Module):
    """Routes a segment by its attribute vector, as v1's ``TopKGate``
    (``uniperceiver/task_moe/gate.py``) with ``TAG_Transform``:
    ``Linear(8, D) + LayerNorm`` ("tag transform"), then a bias-free linear
    ``wg`` to expert logits, top-k experts whose softmax gates are
    renormalised to sum to 1.

    In training, Gaussian noise of std ``noise_std / num_experts`` is added
    to the logits before the softmax and the top-k choice (v1's ``'vmoe'``
    noisy-gate policy). The noise is drawn once per segment kind and batch,
    so all tokens of a segment still share one route.

    v1's load-balancing loss is not used: with attribute-level routing a
    batch has one or two segment kinds, so per-batch expert counts say
    nothing about balance.

    Args:
        embed_dims: model width D.
        num_experts: E.
        top_k: experts per segment (1 or 2).
        attr_dims: width of the attribute vector.
        noise_std: logit noise scale in training (0 disables it).
    """

    def __init__(self,
                 embed_dims: int,
                 num_experts: int = 8,
                 top_k: int = 2,
                 attr_dims: int = ATTRIBUTE_DIMS,
                 noise_std: float = 1.0) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f'top_k={top_k} must lie in [1, num_experts='
                             f'{num_experts}]')
        self.num_experts, self.top_k, self.noise_std = (num_experts, top_k,
                                                        noise_std)
        self.tag_transform = nn.Sequential(
            nn.Linear(attr_dims, embed_dims), nn.LayerNorm(embed_dims))
        self.wg = nn.Linear(embed_dims, num_experts, bias=False)

    def forward(self, attributes: Tensor) -> Tuple[Tensor, Tensor]:
        """
        Args:
            attributes (Tensor): (S, attr_dims) one attribute vector per
                segment kind.

        Returns:
            tuple: expert indices (S, k) long and their gates (S, k), which
            sum to 1 over k.
        """
        logits = self.wg(
            self.tag_transform(attributes.to(self.wg.weight.dtype)))
        if self.training and self.noise_std > 0:
            logits = logits + torch.randn_like(logits) * (
                self.noise_std / self.num_experts)
        gates, indices = logits.softmax(dim=-1).topk(self.top_k, dim=-1)
        gates = gates / gates.sum(-1, keepdim=True).clamp(
            min=torch.finfo(gates.dtype).eps)
        return indices, gates


class ConditionalMoEFFN(nn.Module):
    """An FFN of ``num_experts`` experts, routed per token segment.

    Every token of a segment has the same attribute vector, hence the same
    route, so the output is computed as in v1's ``task_moe/experts.py``:
    the chosen experts' *weights* are merged, ``W = sum_j g_j W_{e_j}``
    (first and second layer, weights and biases), and one FFN runs on the
    segment. The cost is a dense FFN plus merging ``k`` weight matrices per
    segment kind (at inference the merged weights are reused, so the cost
    is that of a dense FFN); the experts are separate ``nn.Linear`` pairs,
    so only the chosen experts receive (and allocate) gradients.

    Merging the second layer's weights is exact. Merging the first layer's
    is what v1 does (each of its ``FusedExperts`` linear layers merges): it
    equals the mixture of experts only up to the nonlinearity
    (``GELU(sum g W1 x)`` vs ``sum g GELU(W1 x)``); it is the "conditional"
    MoE of Uni-Perceiver-MoE, whose cost does not grow with k.

    Args:
        embed_dims: model width D.
        feedforward_channels: hidden width F.
        num_experts: E (8 in the paper).
        top_k: experts per segment (2).
        attr_dims: width of the attribute vectors.
        noise_std: see :class:`AttributeGate`.
        dropout: dropout after the activation and after the output.
    """

    def __init__(self,
                 embed_dims: int,
                 feedforward_channels: int,
                 num_experts: int = 8,
                 top_k: int = 2,
                 attr_dims: int = ATTRIBUTE_DIMS,
                 noise_std: float = 1.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.gate = AttributeGate(embed_dims, num_experts, top_k, attr_dims,
                                  noise_std)
        self.experts = nn.ModuleList([
            nn.ModuleDict(
                dict(
                    fc1=nn.Linear(embed_dims, feedforward_channels),
                    fc2=nn.Linear(feedforward_channels, embed_dims)))
            for _ in range(num_experts)
        ])
        self.drop = nn.Dropout(dropout)
        # inference-only memo of merged weights, see merged_weights()
        self._merged_cache: Dict[Tuple, Tuple[Tuple, Tuple[Tensor, ...]]] = {}

    def train(self, mode: bool = True) -> 'ConditionalMoEFFN':
        """Set the mode; entering training frees the inference memo."""
        if mode:
            self._merged_cache.clear()
        return super().train(mode)

    @staticmethod
    def _merge(params: List[Tensor], gates: Tensor) -> Tensor:
        """``sum_j gates[j] * params[j]``; for two experts (whose gates sum
        to 1) one fused ``lerp``."""
        if len(params) == 1:
            return params[0] * gates[0]
        if len(params) == 2:
            return torch.lerp(params[0], params[1], gates[1])
        return sum(g * p for g, p in zip(gates, params))

    def merged_weights(self, attributes: Tensor) -> List[Tuple[Tensor, ...]]:
        """The merged expert weights of each segment kind.

        At inference (eval mode, no gradient) a route is a constant of the
        weights, so each attribute vector's merged weights are kept and
        reused until any parameter of this layer changes (checked by the
        parameters' storage and version counters, as the target-embedding
        cache does). The memory is one dense FFN per attribute kind in use;
        ``train()`` frees it.

        Args:
            attributes (Tensor): (S, attr_dims).

        Returns:
            list[tuple]: per row of ``attributes``, ``fc1`` weight (F, D)
            and bias (F,), ``fc2`` weight (D, F) and bias (D,).
        """
        if self.training or torch.is_grad_enabled():
            return self._merge_rows(attributes)
        version = tuple((p.data_ptr(), p._version) for p in self.parameters())
        keys = [tuple(row) for row in attributes.tolist()]
        stale = [
            i for i, key in enumerate(keys)
            if self._merged_cache.get(key, (None, ))[0] != version
        ]
        if stale:
            for i, merged in zip(stale, self._merge_rows(attributes[stale])):
                self._merged_cache[keys[i]] = (version, merged)
        return [self._merged_cache[key][1] for key in keys]

    def _merge_rows(self, attributes: Tensor) -> List[Tuple[Tensor, ...]]:
        """Route the rows of ``attributes`` (S, attr_dims) and merge."""
        indices, gates = self.gate(attributes)  # (S, k), (S, k)
        merged = []
        for row_idx, row_gates in zip(indices.tolist(), gates):
            experts = [self.experts[i] for i in row_idx]
            row_gates = row_gates.to(experts[0]['fc1'].weight.dtype)
            merged.append(
                tuple(
                    self._merge([getattr(e[fc], name) for e in experts],
                                row_gates) for fc in ('fc1', 'fc2')
                    for name in ('weight', 'bias')))
        return merged

    def forward(self, x: Tensor, spans: Sequence[Tuple[int, int, int]],
                attributes: Tensor) -> Tensor:
        """
        Args:
            x (Tensor): (B, L, D).
            spans (Sequence[tuple[int, int, int]]): ``(start, end, row)``
                per segment, contiguous and covering ``[0, L)``; ``row``
                indexes ``attributes``.
            attributes (Tensor): (A, attr_dims) the attribute table.

        Returns:
            Tensor: (B, L, D).
        """
        rows = sorted({row for _, _, row in spans})
        merged = dict(zip(rows, self.merged_weights(attributes[rows])))
        outs = []
        for start, end, row in spans:
            w1, b1, w2, b2 = merged[row]
            # a contiguous copy of the span makes the GEMMs faster
            part = x[:, start:end]
            if len(spans) > 1:
                part = part.contiguous()
            h = self.drop(F.gelu(F.linear(part, w1, b1)))
            outs.append(F.linear(h, w2, b2))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        if out.shape[1] != x.shape[1]:
            raise ValueError(f'spans {list(spans)} do not cover the '
                             f'{x.shape[1]} tokens')
        return self.drop(out)
