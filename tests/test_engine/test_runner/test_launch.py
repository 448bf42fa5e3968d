# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import os.path as osp

import pytest
import torch
from mmengine._strategy import SingleDeviceStrategy
from mmengine.config import Config
from mmengine.registry import STRATEGIES
from mmengine.runner import FlexibleRunner, Runner

from mmupv2.engine.runner import launch
from mmupv2.engine.runner.launch import (
    MultiTaskFlexibleRunner,
    build_runner,
    is_multi_task_loader_cfg,
    prepare_cpu_distributed,
    process_group_teardown,
    train_micro_batch_size,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


@pytest.fixture
def cfg(tmp_path):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    return cfg


@pytest.fixture
def no_cuda_group(monkeypatch):
    """A CPU machine whose process group is already up (nothing started)."""
    monkeypatch.setattr(launch.torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(launch.torch_dist, 'is_initialized', lambda: True)


def test_micro_batch_size_of_multi_task_loaders(cfg):
    assert is_multi_task_loader_cfg(cfg.train_dataloader)
    assert not is_multi_task_loader_cfg(cfg.val_dataloader)
    # entries have batch sizes 4, 2, 4
    assert train_micro_batch_size(cfg.train_dataloader) == 4
    assert train_micro_batch_size(cfg.val_dataloader) == 4
    cfg.train_dataloader.cls_b.dataloader.batch_size = 9
    assert train_micro_batch_size(cfg.train_dataloader) == 9
    del cfg.train_dataloader.ret.dataloader['batch_size']
    with pytest.raises(ValueError, match=r"train_dataloader\['ret'\]"):
        train_micro_batch_size(cfg.train_dataloader)


def test_flexible_runner_tells_strategy_the_multi_task_batch_size(
        cfg, monkeypatch):
    """FlexibleRunner reads one batch size for DeepSpeed; the multi-task
    runner reads the entries' (the real strategy needs deepspeed, so a
    stand-in registered under its name records the value)."""
    seen = {}

    class DeepSpeedStrategy(SingleDeviceStrategy):

        def __init__(self, train_micro_batch_size_per_gpu=None, **kwargs):
            seen['micro'] = train_micro_batch_size_per_gpu
            super().__init__(**kwargs)

    monkeypatch.setitem(STRATEGIES._module_dict, 'DeepSpeedStrategy',
                        DeepSpeedStrategy)
    cfg.runner_type = 'FlexibleRunner'
    cfg.strategy = dict(type='DeepSpeedStrategy')
    with pytest.raises(ValueError, match='batch_size'):
        FlexibleRunner.from_cfg(cfg)
    runner = build_runner(cfg)
    assert type(runner) is MultiTaskFlexibleRunner
    assert seen['micro'] == 4
    # the runner keeps the entries for MultiTaskLoop
    assert is_multi_task_loader_cfg(runner._train_dataloader)


def test_build_runner_picks_the_runner(cfg):
    assert type(build_runner(cfg)) is Runner
    cfg.runner_type = 'FlexibleRunner'
    cfg.experiment_name = 'flexible'
    runner = build_runner(cfg)
    assert isinstance(runner, FlexibleRunner)
    assert isinstance(runner.strategy, SingleDeviceStrategy)


def test_flexible_runner_trains_the_multi_task_loop(cfg):
    cfg.runner_type = 'FlexibleRunner'
    cfg.train_cfg.max_iters = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 2
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_2.pth'))


def test_cpu_distributed_is_a_no_op_without_launcher(cfg, no_cuda_group):
    before = cfg.to_dict()
    cfg.launcher = 'none'
    assert prepare_cpu_distributed(cfg) is False
    cfg.pop('launcher')
    assert cfg.to_dict() == before


def test_cpu_distributed_wraps_cpu_modules(cfg, no_cuda_group):
    cfg.launcher = 'pytorch'
    cfg.find_unused_parameters = True
    assert prepare_cpu_distributed(cfg) is True
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        device_ids=None, find_unused_parameters=True)

    # FlexibleRunner: the default DDP strategy, and FSDP on the CPU
    cfg.runner_type = 'FlexibleRunner'
    prepare_cpu_distributed(cfg)
    assert cfg.strategy.type == 'DDPStrategy'
    assert cfg.strategy.model_wrapper.device_ids is None
    assert cfg.strategy.model_wrapper.find_unused_parameters is True
    cfg.strategy = dict(type='FSDPStrategy',
                        model_wrapper=dict(use_orig_params=True))
    prepare_cpu_distributed(cfg)
    assert cfg.strategy.model_wrapper == dict(use_orig_params=True,
                                              device_id='cpu')
    # a wrapper that is not a DDP is left alone
    cfg.runner_type = None
    cfg.model_wrapper_cfg = dict(type='MMFullyShardedDataParallel')
    prepare_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg == dict(
        type='MMFullyShardedDataParallel')


def test_cpu_distributed_errors_name_the_setting(cfg, no_cuda_group):
    cfg.launcher = 'pytorch'
    cfg.env_cfg.dist_cfg.backend = 'nccl'
    with pytest.raises(ValueError,
                       match=r"env_cfg.dist_cfg.backend='nccl'.*gloo"):
        prepare_cpu_distributed(cfg)
    cfg.launcher = 'slurm'
    with pytest.raises(RuntimeError, match="launcher='slurm'.*torchrun"):
        prepare_cpu_distributed(cfg)


def test_cpu_distributed_leaves_gpu_machines_alone(cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg.launcher = 'pytorch'
    cfg.env_cfg.dist_cfg.backend = 'nccl'
    assert prepare_cpu_distributed(cfg) is False
    assert 'model_wrapper_cfg' not in cfg


def _one_rank_group():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    torch.distributed.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)


def test_process_group_teardown_ends_the_group(monkeypatch):
    """Success: barrier, then destroy. Error: destroy without a barrier (the
    other ranks may never reach it), the error propagates. No group: no-op."""
    calls = []
    barrier = torch.distributed.barrier
    monkeypatch.setattr(launch.torch_dist, 'barrier',
                        lambda: calls.append('barrier') or barrier())
    with process_group_teardown():
        pass  # no group started: nothing to do
    assert calls == []

    with process_group_teardown():
        _one_rank_group()
    assert calls == ['barrier']
    assert not torch.distributed.is_initialized()

    calls.clear()
    with pytest.raises(RuntimeError, match='failed'):
        with process_group_teardown():
            _one_rank_group()
            raise RuntimeError('training failed')
    assert calls == []
    assert not torch.distributed.is_initialized()
