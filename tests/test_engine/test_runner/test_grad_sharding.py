# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""MT-AdamW's sharding mode follows the model wrapper: FSDP sets it (and a
2-process FSDP run equals one process), DDP refuses it."""
import types

import pytest
import torch
import torch.distributed as dist
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.optim import OptimWrapper
from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
from torch.nn.parallel import DistributedDataParallel

from mmupv2.engine.optimizers import MTAdamW
from mmupv2.engine.runner import MultiTaskLoop, configure_grad_sharding
from tests.test_engine.two_rank_toy import (
    OPTIM,
    assert_weights_equal,
    free_port,
    loop_of,
    param_groups,
    reference_weights,
    spawn,
    toy_model,
    train_plan,
)


@pytest.fixture
def one_rank_group():
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:'
                            f'{free_port()}', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_fsdp_strategy_sets_sharded_grads(one_rank_group, monkeypatch):
    model = FullyShardedDataParallel(toy_model(), device_id='cpu',
                                     use_orig_params=True)
    opt = MTAdamW(model.parameters(), sharded_grads=True)
    # one rank: FSDP runs NO_SHARD, every rank holds the whole gradient
    assert model.sharding_strategy == ShardingStrategy.NO_SHARD
    configure_grad_sharding(model, opt)
    assert opt.sharded_grads is False
    for strategy in ('FULL_SHARD', 'SHARD_GRAD_OP'):
        monkeypatch.setattr(model, 'sharding_strategy',
                            ShardingStrategy[strategy])
        opt.sharded_grads = False
        configure_grad_sharding(model, opt)
        assert opt.sharded_grads is True
    monkeypatch.setattr(model, 'sharding_strategy',
                        ShardingStrategy.HYBRID_SHARD)
    with pytest.raises(ValueError, match='HYBRID_SHARD.*FULL_SHARD'):
        configure_grad_sharding(model, opt)
    # an optimizer without the flag (the AdamW ablation) is left alone
    configure_grad_sharding(model, torch.optim.AdamW(model.parameters()))
    configure_grad_sharding(model, None)


def test_ddp_refuses_sharded_grads(one_rank_group):
    model = DistributedDataParallel(toy_model())
    configure_grad_sharding(model, MTAdamW(model.parameters()))
    with pytest.raises(ValueError, match=r'sharded_grads=True\) under '
                       'DistributedDataParallel'):
        configure_grad_sharding(
            model, MTAdamW(model.parameters(), sharded_grads=True))


def test_loop_sets_up_the_optimizer_when_training_starts(monkeypatch):
    """MultiTaskLoop.run() hands the wrapped model and MT-AdamW (found in
    the optim wrapper) to configure_grad_sharding before training."""
    seen = []
    monkeypatch.setattr(
        'mmupv2.engine.runner.multi_task_loop.configure_grad_sharding',
        lambda model, opt: seen.append((model, opt)))
    model = toy_model()
    opt = MTAdamW(model.parameters())
    loop = loop_of(model, OptimWrapper(opt))
    loop.dataloader = types.SimpleNamespace()
    monkeypatch.setattr('mmengine.runner.loops.IterBasedTrainLoop.run',
                        lambda self: 'trained')
    loop._iter = 0
    assert MultiTaskLoop.run(loop) == 'trained'
    assert seen == [(model, opt)]


def _fsdp_worker(rank: int, port: int, out) -> None:
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        model = MMFullyShardedDataParallel(
            module=toy_model(), device_id='cpu', use_orig_params=True,
            sharding_strategy='FULL_SHARD')
        # as the config gives it: no sharded_grads; the loop sets it
        opt = MTAdamW(param_groups(model.named_parameters()), **OPTIM)
        optim_wrapper = OptimWrapper(opt)
        loop_of(model, optim_wrapper).setup_optimizer()
        out[('sharded_grads', rank)] = opt.sharded_grads
        train_plan(model, optim_wrapper, rank)
        with FullyShardedDataParallel.summon_full_params(model):
            out[rank] = {k: v.detach().clone()
                         for k, v in model.module.state_dict().items()}
    finally:
        dist.destroy_process_group()


def test_fsdp_two_ranks_equal_one_process():
    """FSDP FULL_SHARD on 2 gloo processes, MT-AdamW set up by the loop,
    trained through the loop's train step (unmixed and mixed iterations,
    two parameter groups): the weights equal one process's to 1e-6."""
    out = spawn(_fsdp_worker)
    assert out[('sharded_grads', 0)] is out[('sharded_grads', 1)] is True
    ref = reference_weights()
    for rank in (0, 1):
        assert_weights_equal(out[rank], ref, what=f'rank {rank}: ')
