# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""RandomStateHook and the random-state helpers: states round-trip through
a weights-only checkpoint, a resumed run draws the numbers of the
uninterrupted one, validation draws nothing from training's stream."""
import io
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmupv2.engine.hooks import RandomStateHook
from mmupv2.utils.random_state import (
    get_random_state,
    preserved_random_state,
    set_random_state,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


def _draw():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)], np.random.randn(),
            random.gauss(0, 1))


def test_state_round_trips_through_weights_only_load():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.randn()  # numpy holds a cached gaussian now
    random.gauss(0, 1)  # and Python one
    state = get_random_state()
    expected = _draw()
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    _draw()
    set_random_state(loaded)
    assert _draw() == expected
    with pytest.raises(KeyError, match='numpy'):
        set_random_state(dict(torch=state['torch'], python=state['python']))


def test_preserved_random_state_leaves_every_generator():
    gen = torch.Generator().manual_seed(3)
    state = get_random_state()
    expected = _draw() + (torch.rand(2, generator=gen).tolist(), )
    set_random_state(state)
    gen.manual_seed(3)
    with preserved_random_state([gen, None]):
        _draw()
        torch.rand(5, generator=gen)
    assert _draw() + (torch.rand(2, generator=gen).tolist(), ) == expected


class DrawRecorder(Hook):
    """Draws from torch, numpy and Python in every iteration, as the model
    and the transforms do."""
    priority = 'NORMAL'

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.rows.append((batch_idx, _draw()))


def _runner(work_dir, **overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(overrides)
    runner = Runner.from_cfg(cfg)
    recorder = DrawRecorder()
    runner.register_hook(recorder)
    return runner, recorder


def test_resumed_run_draws_what_the_uninterrupted_run_draws(tmp_path):
    """Toy config: 12 iterations, checkpoint and validation at 6 (the
    validation loader's iterator draws a seed from torch's generator)."""
    full, rec_full = _runner(tmp_path / 'full')
    full.train()
    hooks = [h for h in full.hooks if isinstance(h, RandomStateHook)]
    assert len(hooks) == 1  # MultiTaskLoop registered it

    ckpt = torch.load(str(tmp_path / 'full' / 'iter_6.pth'),
                      weights_only=False)
    saved = ckpt['random_state']
    assert saved['iter'] == 6 and len(saved['ranks']) == 1
    buf = io.BytesIO()
    torch.save(saved, buf)
    buf.seek(0)
    torch.load(buf, weights_only=True)  # tensors, tuples and numbers only

    resumed, rec_resumed = _runner(
        tmp_path / 'resumed', resume=True,
        load_from=str(tmp_path / 'full' / 'iter_6.pth'))
    resumed.train()
    assert rec_resumed.rows == [r for r in rec_full.rows if r[0] >= 6]
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_load_from_without_resume_keeps_fresh_seeds(tmp_path):
    """``load_from`` (weights only) starts at iteration 0: the generators
    are those of a fresh run, not the checkpoint's."""
    no_val = dict(val_dataloader=None, val_cfg=None, val_evaluator=None)
    fresh, rec_fresh = _runner(tmp_path / 'fresh', **no_val)
    fresh.train()
    loaded, rec_loaded = _runner(
        tmp_path / 'loaded', load_from=str(tmp_path / 'fresh' / 'iter_6.pth'),
        **no_val)
    loaded.train()
    assert rec_loaded.rows == rec_fresh.rows
