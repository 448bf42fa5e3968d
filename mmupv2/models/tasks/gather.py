# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""All-gather that keeps the gradient (retrieval negatives from all ranks)."""
from typing import Any, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_gather, get_rank, get_world_size
from torch import Tensor


class _AllGatherWithGrad(torch.autograd.Function):
    """Forward: ``cat(all_gather(x))``. Backward: the gradient of the
    gathered tensor is summed over ranks (``all_reduce``) and each rank
    keeps the rows of its own ``x``: rank r's features get the gradient of
    every rank's loss, as with ``torch.distributed.nn.all_gather`` (which
    torch 2.14 deprecates), on any backend (gloo, nccl)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.rank, ctx.batch = get_rank(), x.shape[0]
        return torch.cat(all_gather(x.contiguous()), dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        torch_dist.all_reduce(grad)
        start = ctx.rank * ctx.batch
        return grad[start:start + ctx.batch]


def gather_with_grad(x: Tensor) -> Tuple[Tensor, int]:
    """Concatenate ``x`` of every rank, differentiably.

    Every rank must pass the same shape (training loaders drop the last
    incomplete batch or sample infinitely); a mismatch raises before any
    collective blocks.

    Args:
        x (Tensor): (B, D) this rank's features.

    Returns:
        tuple: (world_size * B, D) features of all ranks in rank order, and
        the offset ``rank * B`` of this rank's rows.
    """
    world_size = get_world_size()
    if world_size == 1:
        return x, 0
    sizes = all_gather(torch.tensor([x.shape[0]], device=x.device))
    if any(int(s) != x.shape[0] for s in sizes):
        raise ValueError('gather_with_grad: every rank needs the same batch '
                         f'size, got {[int(s) for s in sizes]}')
    return _AllGatherWithGrad.apply(x), get_rank() * x.shape[0]
