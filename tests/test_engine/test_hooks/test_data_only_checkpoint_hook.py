# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""DataOnlyCheckpointHook: the checkpoints of an mmupv2 run hold plain data,
so torch's weights-only loader (mmengine's own, without mmupv2's allow-list)
reads and resumes them."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmupv2.engine.hooks import DataOnlyCheckpointHook
from mmupv2.engine.hooks.data_only_checkpoint_hook import (
    BUFFER_TAG,
    buffer_from_data,
    buffer_to_data,
)

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


def test_buffer_round_trip_is_exact():
    buffer = HistoryBuffer([0.1, 2, 1e-30], [1, 3, 2], max_length=7)
    data = buffer_to_data(buffer)
    assert data[BUFFER_TAG] == 1 and data['max_length'] == 7
    back = buffer_from_data(data)
    assert type(back) is HistoryBuffer and back.max_length == 7
    for ours, theirs in zip(back.data, buffer.data):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert back.mean() == buffer.mean()
    assert buffer_from_data({'a': 1}) == {'a': 1}


def test_run_checkpoints_load_weights_only_and_resume(tmp_path):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path / 'a')
    cfg.merge_from_dict(dict(
        val_dataloader=None, val_cfg=None, val_evaluator=None,
        train_cfg=dict(max_iters=6)))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert sum(isinstance(h, DataOnlyCheckpointHook)
               for h in runner.hooks) == 1  # MultiTaskLoop registered it
    path = str(tmp_path / 'a' / 'iter_6.pth')
    # torch's own allow-list, as mmengine's load_from_local uses it
    checkpoint = torch.load(path, weights_only=True)
    scalars = checkpoint['message_hub']['log_scalars']
    assert scalars and all(v[BUFFER_TAG] == 1 for v in scalars.values())
    assert isinstance(checkpoint['message_hub']['runtime_info']['eta'],
                      float)
    assert _load_checkpoint(path)['meta']['iter'] == 6

    cfg.work_dir = str(tmp_path / 'b')
    cfg.merge_from_dict(dict(
        resume=True, load_from=path, train_cfg=dict(max_iters=8)))
    resumed = Runner.from_cfg(cfg)
    resumed.train()  # plain mmengine Runner, no mmupv2 loader
    assert resumed.iter == 8
    loss = resumed.message_hub.get_scalar('train/loss')
    assert type(loss) is HistoryBuffer and len(loss.data[0]) >= 8


def test_without_the_hook_mmengine_refuses(tmp_path):
    """What the hook avoids: mmengine's pickled HistoryBuffer."""
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(message_hub=dict(
        log_scalars=dict(loss=HistoryBuffer([1.0], [1])))), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(path)
