# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmengine 0.10.7 + torch >= 2.6: save -> resume must work once mmupv2 is
imported (see mmupv2/utils/checkpoint.py)."""
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmupv2  # noqa: F401  (installs the local checkpoint loader)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class ToyDataset(Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, idx):
        return dict(inputs=torch.full((4, ), float(idx)))


def _runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(), batch_size=2, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=3,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        **kwargs)


def test_save_then_resume(tmp_path):
    first = _runner(tmp_path, max_iters=3)
    first.train()
    ckpt = tmp_path / 'iter_3.pth'
    assert ckpt.exists()
    # the file really holds more than tensors (why weights_only fails)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)

    second = _runner(tmp_path, max_iters=5, resume=True)
    second.train()
    assert second.iter == 5
    state = torch.load(tmp_path / 'iter_5.pth', weights_only=False)
    assert state['meta']['iter'] == 5
    # the resumed run continued from the saved optimizer state
    saved = torch.load(ckpt, weights_only=False)
    assert saved['optimizer']['state'][0]['step'].item() == 3
    assert state['optimizer']['state'][0]['step'].item() == 5


def test_load_from_restores_weights(tmp_path):
    first = _runner(tmp_path / 'a', max_iters=3)
    first.train()
    weights = first.model.linear.weight.detach().clone()
    runner = _runner(tmp_path / 'b', max_iters=3,
                     load_from=str(tmp_path / 'a' / 'iter_3.pth'))
    runner.load_or_resume()
    assert torch.equal(runner.model.linear.weight, weights)


def test_switch_off_keeps_weights_only(tmp_path, monkeypatch):
    _runner(tmp_path, max_iters=3).train()
    monkeypatch.setenv('MMUPV2_TRUST_LOCAL_CHECKPOINTS', '0')
    with pytest.raises(pickle.UnpicklingError):
        _runner(tmp_path, max_iters=5, resume=True).train()


def test_missing_file_is_named(tmp_path):
    from mmupv2.utils import load_local_checkpoint
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_local_checkpoint(str(tmp_path / 'nope.pth'))
