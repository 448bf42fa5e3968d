# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A shortened run trains the whole schedule (mmupv2/engine/runner/
run_length.py), from ``tools/train.py`` and from the demo alike."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

from mmupv2.engine.runner.run_length import fit_schedulers_to_run

from ...scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')


def _lr_per_iteration(cfg, base_lr=1e-3):
    """The learning rate of every iteration of ``cfg.train_cfg.max_iters``
    under ``cfg.param_scheduler``, as mmengine's ParamSchedulerHook steps
    it."""
    param = torch.nn.Parameter(torch.zeros(1))
    optim = OptimWrapper(torch.optim.SGD([param], lr=base_lr))
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optim))
        for s in cfg.param_scheduler
    ]
    lrs = []
    for _ in range(cfg.train_cfg.max_iters):
        lrs.append(optim.param_groups[0]['lr'])
        optim.optimizer.step()  # no gradient: moves nothing
        for scheduler in schedulers:
            scheduler.step()
    return lrs


def _check_fitted(cfg, max_iters):
    """The tiny config's warm-up and cosine, fitted to ``max_iters`` (less
    than the 50 warm-up iterations): the warm-up completes within the run,
    the cosine, which began after it, acts in its last iteration only."""
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == max_iters and warmup.begin == 0
    assert cosine.begin == max_iters - 1 and cosine.end == max_iters
    lrs = _lr_per_iteration(cfg)
    assert lrs == sorted(lrs) and lrs[-1] == pytest.approx(1e-3)


def test_tiny_config_fitted_to_20_iterations(warnings_logged):
    """The issue's case: 20 iterations of the tiny config (50 warm-up, a
    cosine to 1000) would end inside the warm-up."""
    cfg = Config.fromfile(TINY)
    cfg.train_cfg.max_iters = 20
    truncated = _lr_per_iteration(cfg)
    assert truncated[-2] < truncated[-1] < 5e-4  # still warming up
    messages = fit_schedulers_to_run(cfg)
    _check_fitted(cfg, 20)
    assert len(messages) == 2 and messages == warnings_logged
    assert 'LinearLR' in messages[0] and 'end 50 -> ' in messages[0]
    assert 'CosineAnnealingLR' in messages[1]
    assert 'train_cfg.max_iters=20' in messages[1]
    # a schedule that fits is left alone, silently
    assert fit_schedulers_to_run(cfg) == []


def test_t_max_epoch_schedulers_and_per_optimizer_dicts():
    cfg = Config(dict(
        train_cfg=dict(max_iters=100),
        param_scheduler=dict(
            a=[dict(type='CosineAnnealingLR', by_epoch=False, T_max=500,
                    begin=20)],
            b=dict(type='LinearLR', by_epoch=True, end=300))))
    messages = fit_schedulers_to_run(cfg)
    cosine = cfg.param_scheduler.a[0]
    assert cosine.T_max == 80 and cosine.begin == 20
    assert 'T_max 500 -> ' in messages[0] and len(messages) == 1
    assert cfg.param_scheduler.b.end == 300  # epochs: not iterations
    lrs = _lr_per_iteration(
        Config(dict(train_cfg=cfg.train_cfg, param_scheduler=[cosine])))
    assert lrs[-1] == pytest.approx(1e-3 * (1 + math.cos(math.pi * 79 / 80))
                                    / 2)
    assert fit_schedulers_to_run(Config(dict(param_scheduler=[]))) == []


def test_train_tool_fits_the_schedule(warnings_logged):
    """``tools/train.py CONFIG --cfg-options train_cfg.max_iters=20``."""
    train = load_script(osp.join(ROOT, 'tools', 'train.py'))
    args = train.parse_args(
        [TINY, '--cfg-options', 'train_cfg.max_iters=20'])
    cfg = train.merge_args(Config.fromfile(TINY), args)
    _check_fitted(cfg, 20)
    assert sum('max_iters=20' in m for m in warnings_logged) == 2


def test_demo_fits_the_schedule(warnings_logged):
    """``tools/misc/demo.py --max-iters 20``."""
    demo = load_script(osp.join(ROOT, 'tools', 'misc', 'demo.py'))
    cfg = Config.fromfile(TINY)
    demo.set_max_iters(cfg, 20)
    assert cfg.train_cfg.max_iters == 20
    _check_fitted(cfg, 20)
    assert sum('max_iters=20' in m for m in warnings_logged) == 2
