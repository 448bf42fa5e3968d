# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The FlexibleRunner strategy configs: FSDP built and trained on the CPU in
a single-process gloo group; DeepSpeed parsed (built where installed)."""
import os.path as osp
import socket

import pytest
import torch
import torch.distributed as torch_dist
from mmengine._strategy import FSDPStrategy
from mmengine.config import Config
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.runner import FlexibleRunner

from mmupv2.engine.runner import scheduled_entry
from mmupv2.engine.runner.launch import (
    MultiTaskFlexibleRunner,
    build_runner,
    prepare_cpu_distributed,
)
from mmupv2.testing import ToyMultiTaskModel

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STRATEGIES = osp.join(ROOT, 'configs', '_base_', 'strategies')
TOY = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _toy_with(strategy_file: str, work_dir: str) -> Config:
    """The toy config with a strategy file merged on top, as a config that
    inherits both would be."""
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict(
        Config.fromfile(osp.join(STRATEGIES, strategy_file)).to_dict())
    cfg.work_dir = work_dir
    return cfg


@pytest.fixture
def gloo_group(monkeypatch):
    """torchrun's variables for one process; the group is destroyed after
    the test."""
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(_free_port()))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('LOCAL_RANK', '0')
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_fsdp_config():
    cfg = Config.fromfile(osp.join(STRATEGIES, 'fsdp.py'))
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.type == 'FSDPStrategy'
    assert cfg.strategy.model_wrapper.type == 'MMFullyShardedDataParallel'
    # keeps paramwise_cfg / MT-AdamW's per-parameter groups
    assert cfg.strategy.model_wrapper.use_orig_params is True
    assert cfg.strategy.state_dict_cfg == 'full'
    assert cfg.optim_wrapper.type == 'OptimWrapper'


def test_fsdp_builds_and_trains_on_cpu(tmp_path, gloo_group, monkeypatch):
    # the CPU (gloo) path, also on a machine with GPUs
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _toy_with('fsdp.py', str(tmp_path))
    cfg.launcher = 'pytorch'
    cfg.train_cfg.max_iters = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    assert prepare_cpu_distributed(cfg) is True
    assert torch_dist.is_initialized()
    assert torch_dist.get_backend() == 'gloo'
    assert cfg.strategy.model_wrapper.device_id == 'cpu'

    # mmengine's FlexibleRunner constructs from the config
    cfg.experiment_name = 'fsdp_plain'
    plain = FlexibleRunner.from_cfg(cfg)
    assert isinstance(plain.strategy, FSDPStrategy)
    assert plain.distributed

    # tools/train.py's runner trains MultiTaskLoop under FSDP; the weights
    # the strategy wraps (built and initialised) are recorded
    initial = {}
    wrap = FSDPStrategy._wrap_model

    def record_and_wrap(self, model):
        initial.update(
            {k: v.detach().clone() for k, v in model.state_dict().items()})
        return wrap(self, model)

    monkeypatch.setattr(FSDPStrategy, '_wrap_model', record_and_wrap)
    cfg.experiment_name = 'fsdp_multi_task'
    runner = build_runner(cfg)
    assert type(runner) is MultiTaskFlexibleRunner
    runner.train()
    assert isinstance(runner.model, MMFullyShardedDataParallel)
    assert runner.iter == 2
    assert type(runner.optim_wrapper.optimizer).__name__ == 'MTAdamW'

    # 'full' state dicts: the checkpoint loads into the bare model
    ckpt = torch.load(
        osp.join(str(tmp_path), 'iter_2.pth'), map_location='cpu',
        weights_only=False)
    model = ToyMultiTaskModel(tasks=dict(classification=3, retrieval=4))
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert initial.keys() == ckpt['state_dict'].keys()
    changed = {
        name
        for name, value in ckpt['state_dict'].items()
        if not torch.equal(value, initial[name])
    }
    # the shared trunk and the head of each task the 2 iterations trained
    entries = runner.train_loop.entries
    ratios = [e.sampling_ratio for e in entries]
    trained = {
        entries[scheduled_entry(runner.seed, it, ratios)].task
        for it in range(2)
    }
    expected = {'trunk.0.weight', 'trunk.0.bias'}
    expected |= {f'heads.{task}.weight' for task in trained}
    assert expected <= changed, (expected, changed)


def test_deepspeed_config(tmp_path):
    cfg = Config.fromfile(osp.join(STRATEGIES, 'deepspeed.py'))
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.type == 'DeepSpeedStrategy'
    assert cfg.optim_wrapper.type == 'MultiTaskDeepSpeedOptimWrapper'
    assert cfg.strategy.zero_optimization.stage == 2
    assert cfg.strategy.config.zero_allow_untested_optimizer is True
    assert cfg.strategy.bf16.enabled is True
    assert cfg.strategy.inputs_to_half == ['inputs']
    # it merges into a multi-task config as a base would
    merged = _toy_with('deepspeed.py', str(tmp_path))
    assert merged.optim_wrapper.type == 'MultiTaskDeepSpeedOptimWrapper'
    assert merged.optim_wrapper.optimizer.type == 'MTAdamW'


def test_deepspeed_strategy_builds(tmp_path):
    # building the strategy needs the optional `deepspeed` package
    pytest.importorskip('deepspeed')
    merged = _toy_with('deepspeed.py', str(tmp_path))
    merged.launcher = 'none'
    runner = build_runner(merged)
    assert type(runner.strategy).__name__ == 'DeepSpeedStrategy'
    assert runner.strategy.config['train_micro_batch_size_per_gpu'] == 4
    assert runner.strategy.config['zero_optimization']['stage'] == 2
