# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Tell MT-AdamW whether each rank holds the whole gradient or a shard."""
from typing import Any, Optional

import torch.nn as nn
from mmengine.logging import print_log
from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
from torch.nn.parallel import DistributedDataParallel

#: FSDP strategies whose gradients are sharded over the default group
SHARDED = (ShardingStrategy.FULL_SHARD, ShardingStrategy.SHARD_GRAD_OP)


def configure_grad_sharding(model: nn.Module,
                            optimizer: Optional[Any]) -> None:
    """Set ``optimizer.sharded_grads`` from the way ``model`` is wrapped.

    MT-AdamW divides by the global gradient norm. Under FSDP with
    ``FULL_SHARD`` / ``SHARD_GRAD_OP`` each rank holds a shard of every
    gradient, so the squared norm must be summed over the ranks
    (``sharded_grads=True``); under ``NO_SHARD`` (also what FSDP uses on a
    single rank) and DDP every rank holds the whole, all-reduced gradient
    (``False``). ``MultiTaskLoop`` calls this when training starts, after
    the runner or strategy wrapped the model, so the FSDP config needs no
    hand-set flag.

    Args:
        model: the runner's (wrapped) model.
        optimizer: the multi-task optimizer; one without a
            ``sharded_grads`` attribute (plain AdamW) is left alone.

    Raises:
        ValueError: FSDP's hybrid strategies (gradients sharded within a
            node and replicated across nodes: summing over the default
            group would count each shard once per node), and
            ``sharded_grads=True`` under DDP.
    """
    if optimizer is None or not hasattr(optimizer, 'sharded_grads'):
        return
    name = type(optimizer).__name__
    if isinstance(model, FullyShardedDataParallel):
        strategy = model.sharding_strategy
        if strategy in SHARDED:
            sharded = True
        elif strategy == ShardingStrategy.NO_SHARD:
            sharded = False
        else:
            raise ValueError(
                f'{name} under FSDP sharding_strategy={strategy.name}: the '
                'gradient shards are replicated across nodes, and the global '
                'norm over the default process group would count each once '
                'per node; use FULL_SHARD or SHARD_GRAD_OP '
                '(strategy.model_wrapper.sharding_strategy)')
        if optimizer.sharded_grads != sharded:
            print_log(
                f'{name}: sharded_grads={sharded} (FSDP '
                f'{strategy.name})', logger='current')
        optimizer.sharded_grads = sharded
    elif isinstance(model, DistributedDataParallel) and \
            optimizer.sharded_grads:
        raise ValueError(
            f'{name}(sharded_grads=True) under DistributedDataParallel: every '
            'rank holds the whole all-reduced gradient, and summing its '
            'squared norm over the ranks would make the norm sqrt(world '
            'size) too large; remove optim_wrapper.optimizer.sharded_grads')
