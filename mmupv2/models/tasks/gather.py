# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""All-gathers that keep the gradient: retrieval negatives from all ranks,
and target embeddings (class names, the vocabulary) encoded a shard per
rank."""
from typing import Any, List, Sequence, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_gather, get_rank, get_world_size
from torch import Tensor


class _AllGatherWithGrad(torch.autograd.Function):
    """Forward: ``cat(all_gather(x))``, where rank r holds ``sizes[r]``
    rows (each rank's ``x`` is padded to the largest size for the
    collective and trimmed after it). Backward: the gradient of the
    gathered tensor is summed over ranks (``all_reduce``) and each rank
    keeps the rows of its own ``x``: rank r's rows get the gradient of
    every rank's loss, as with ``torch.distributed.nn.all_gather`` (which
    torch 2.14 deprecates), on any backend (gloo, nccl)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, sizes: Sequence[int]) -> Tensor:
        rank = get_rank()
        ctx.start = sum(sizes[:rank])
        ctx.rows = sizes[rank]
        longest = max(sizes)
        padded = x.contiguous()
        if x.shape[0] < longest:
            padded = torch.cat(
                [padded, padded.new_zeros(longest - x.shape[0],
                                          *x.shape[1:])])
        pieces = all_gather(padded)
        return torch.cat([p[:n] for p, n in zip(pieces, sizes)], dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None]:
        grad = grad.contiguous()
        torch_dist.all_reduce(grad)
        return grad[ctx.start:ctx.start + ctx.rows], None


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
    return (_AllGatherWithGrad.apply(x, [x.shape[0]] * world_size),
            get_rank() * x.shape[0])


def shard_sizes(num: int, world_size: int) -> List[int]:
    """Rows of each rank when ``num`` rows are split over ``world_size``
    ranks in order: the first ``num % world_size`` ranks take one more
    (``numpy.array_split``'s rule), e.g. ``shard_sizes(7, 3) == [3, 2, 2]``.
    """
    base, extra = divmod(num, world_size)
    return [base + (r < extra) for r in range(world_size)]


def shard_range(num: int) -> slice:
    """The rows of ``num`` (in order) that this rank computes (see
    :func:`shard_sizes`); every row on one process."""
    sizes = shard_sizes(num, get_world_size())
    rank = get_rank()
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def gather_shards_with_grad(shard: Tensor, num: int) -> Tensor:
    """The (num, D) rows that the ranks computed a shard each
    (:func:`shard_range`), concatenated in order, differentiably.

    The gradient of every rank's loss with respect to a row reaches the
    rank that computed it (and only it), so after DDP's averaging each
    parameter's gradient is that of every rank computing all rows. Every
    rank must call it with the same ``num`` (the same target set); a
    mismatch raises before the gather.

    Args:
        shard (Tensor): (n_r, D) this rank's rows, ``n_r`` from
            :func:`shard_sizes`.
        num: N, the rows of all ranks.

    Returns:
        Tensor: (N, D), on one process ``shard`` itself.
    """
    world_size = get_world_size()
    if world_size == 1:
        return shard
    nums = all_gather(torch.tensor([num], device=shard.device))
    if any(int(n) != num for n in nums):
        raise ValueError(
            'gather_shards_with_grad: every rank must encode the same target'
            f' set, but the ranks hold {[int(n) for n in nums]} targets (did '
            'the ranks train different tasks in one iteration?)')
    sizes = shard_sizes(num, world_size)
    if shard.shape[0] != sizes[get_rank()]:
        raise ValueError(
            f'gather_shards_with_grad: rank {get_rank()} holds '
            f'{shard.shape[0]} rows, its shard of {num} is '
            f'{sizes[get_rank()]}')
    return _AllGatherWithGrad.apply(shard, sizes)
