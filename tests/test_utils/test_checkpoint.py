# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Checkpoints load weights-only (mmupv2/utils/checkpoint.py): a crafted
pickle, local or served over http, runs nothing unless trusted; mmengine's
training checkpoints (HistoryBuffer, numpy) still load and resume; importing
mmupv2 leaves mmengine's own loader alone."""
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from torch.utils.data import Dataset

import mmupv2  # noqa: F401
from mmupv2.utils import (
    TRUST_ENV,
    UnsafeCheckpointError,
    load_checkpoint,
    safe_checkpoint_loading,
)

from ..untrusted import write_payload


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


class GetattrGadget:
    """``getattr(HistoryBuffer, '__init__')``: not a statistic."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


# --------------------------------------------------- code does not run
def test_local_pickle_with_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    marker = tmp_path / 'ran'
    path = write_payload(tmp_path / 'evil.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(path)
    assert not marker.exists()
    message = str(info.value)
    assert path in message and 'system' in message
    assert '--trust-checkpoint' in message and TRUST_ENV in message
    assert isinstance(info.value, pickle.UnpicklingError)
    # mmengine callers inside the scope get the same loader
    with safe_checkpoint_loading(), pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path)
    assert not marker.exists()


def test_remote_pickle_with_code_is_refused(tmp_path, http_root,
                                            monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    root, base = http_root
    marker = tmp_path / 'ran'
    write_payload(root / 'evil.pth', marker)
    url = f'{base}/evil.pth'
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(url)
    assert not marker.exists()
    assert url in str(info.value) and TRUST_ENV in str(info.value)
    with safe_checkpoint_loading(), pytest.raises(UnsafeCheckpointError):
        mmengine_checkpoint.load_checkpoint(nn.Linear(1, 1), url)
    assert not marker.exists()


@pytest.mark.parametrize('scheme, table', [
    ('torchvision', 'get_torchvision_models'),
    ('open-mmlab', 'get_external_models'),
    ('mmcls', 'get_mmcls_models'),
])
def test_model_zoo_pickle_with_code_is_refused_unless_trusted(
        scheme, table, tmp_path, http_root, monkeypatch):
    """A model-zoo name resolves to its URL, which is then read under the
    caller's trust like any URL: refused by default and with trust=False
    (even with the environment variable set), run only with trust=True."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    root, base = http_root
    marker = tmp_path / 'ran'
    write_payload(root / 'evil.pth', marker)
    monkeypatch.setattr(mmengine_checkpoint, table,
                        lambda: {'evil': f'{base}/evil.pth'})
    name = f'{scheme}://evil'
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        load_checkpoint(name)
    assert not marker.exists()
    monkeypatch.setenv(TRUST_ENV, '1')
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(name, trust=False)
    assert not marker.exists()
    monkeypatch.delenv(TRUST_ENV)
    with safe_checkpoint_loading(), pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(name)
    assert not marker.exists()
    if scheme != 'mmcls':  # mmcls:// post-processes a state dict
        load_checkpoint(name, trust=True)
        assert marker.exists()


def test_remote_weights_load(http_root):
    root, base = http_root
    torch.save(dict(state_dict=OrderedDict(w=torch.arange(3.))),
               str(root / 'good.pth'))
    loaded = load_checkpoint(f'{base}/good.pth', map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.))


def test_trusted_loads_with_a_warning_each_time(tmp_path, monkeypatch,
                                                warnings_logged):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    marker = tmp_path / 'ran'
    path = write_payload(tmp_path / 'evil.pth', marker)
    loaded = load_checkpoint(path, trust=True)
    assert marker.exists()  # the opt-in really unpickles everything
    assert torch.equal(loaded['state_dict']['w'], torch.zeros(2))
    marker.unlink()
    monkeypatch.setenv(TRUST_ENV, '1')
    load_checkpoint(path)
    assert marker.exists()
    trusted = [m for m in warnings_logged if 'weights_only=False' in m]
    assert len(trusted) == 2 and all(path in m for m in trusted)
    assert 'trust=True' in trusted[0] and TRUST_ENV in trusted[1]


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    path = str(tmp_path / 'gadget.pth')
    torch.save(dict(x=GetattrGadget()), path)
    with pytest.raises(UnsafeCheckpointError, match='__init__'):
        load_checkpoint(path)


def test_history_buffer_state_is_checked(tmp_path, monkeypatch):
    buffer = HistoryBuffer([1.0, 2.0], [1, 1])
    before = dict(HistoryBuffer._statistics_methods)
    # a statistic that is not HistoryBuffer's own function
    monkeypatch.setattr(
        HistoryBuffer, '__getstate__', lambda self: dict(
            max_length=3, _log_history=np.zeros(1), _count_history=np.ones(1),
            statistics_methods={'mean': OrderedDict}))
    path = str(tmp_path / 'buffer.pth')
    torch.save(dict(message_hub=dict(log_scalars=dict(loss=buffer))), path)
    with pytest.raises(UnsafeCheckpointError,
                       match='functions of HistoryBuffer'):
        load_checkpoint(path)
    # an unknown field
    monkeypatch.setattr(HistoryBuffer, '__getstate__',
                        lambda self: dict(max_length=3, _extra=1))
    torch.save(dict(loss=buffer), path)
    with pytest.raises(UnsafeCheckpointError, match='_extra'):
        load_checkpoint(path)
    assert HistoryBuffer._statistics_methods == before


# ------------------------------------- mmengine's checkpoints still load
def test_training_checkpoint_loads_weights_only(tmp_path):
    _runner(tmp_path, max_iters=3).train()
    path = str(tmp_path / 'iter_3.pth')
    # the file holds more than torch's own allow-list takes
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    checkpoint = load_checkpoint(path, map_location='cpu')
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert type(buffer) is HistoryBuffer
    assert len(buffer.data[0]) == 3 and np.isfinite(buffer.mean())
    assert checkpoint['meta']['iter'] == 3


def test_save_then_resume(tmp_path):
    _runner(tmp_path, max_iters=3).train()
    ckpt = tmp_path / 'iter_3.pth'
    second = _runner(tmp_path, max_iters=5, resume=True)
    with safe_checkpoint_loading():
        second.train()
    assert second.iter == 5
    state = load_checkpoint(str(tmp_path / 'iter_5.pth'))
    assert state['meta']['iter'] == 5
    # the resumed run continued from the saved optimizer state
    saved = load_checkpoint(str(ckpt))
    assert saved['optimizer']['state'][0]['step'].item() == 3
    assert state['optimizer']['state'][0]['step'].item() == 5


def test_load_from_restores_weights(tmp_path):
    first = _runner(tmp_path / 'a', max_iters=3)
    first.train()
    weights = first.model.linear.weight.detach().clone()
    runner = _runner(tmp_path / 'b', max_iters=3,
                     load_from=str(tmp_path / 'a' / 'iter_3.pth'))
    with safe_checkpoint_loading():
        runner.load_or_resume()
    assert torch.equal(runner.model.linear.weight, weights)


# ------------------------------------- mmengine's own loader unchanged
def test_importing_mmupv2_leaves_mmengine_loader_alone(tmp_path):
    import mmupv2.apis  # noqa: F401
    import mmupv2.engine  # noqa: F401
    schemes = CheckpointLoader._schemes
    assert schemes[''] is mmengine_checkpoint.load_from_local
    assert schemes['http://'] is mmengine_checkpoint.load_from_http
    assert schemes['https://'] is mmengine_checkpoint.load_from_http
    _runner(tmp_path, max_iters=3).train()
    path = str(tmp_path / 'iter_3.pth')
    # plain mmengine refuses its own training checkpoint, as without mmupv2
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(path)
    # the scope is temporary and restores mmengine's loaders
    with safe_checkpoint_loading():
        assert _load_checkpoint(path)['meta']['iter'] == 3
        assert schemes is not CheckpointLoader._schemes
    assert CheckpointLoader._schemes[''] is \
        mmengine_checkpoint.load_from_local
    assert list(CheckpointLoader._schemes) == list(schemes)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint(str(tmp_path / 'nope.pth'))


def test_nested_scope_inherits_trust(tmp_path, monkeypatch):
    """``tools/train.py --trust-checkpoint`` reaches the model's own block
    (``UniPerceiverV2.init_weights``)."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    marker = tmp_path / 'ran'
    path = write_payload(tmp_path / 'evil.pth', marker)
    with safe_checkpoint_loading(), safe_checkpoint_loading():
        with pytest.raises(UnsafeCheckpointError):
            _load_checkpoint(path)
    with safe_checkpoint_loading(trust=True), safe_checkpoint_loading():
        _load_checkpoint(path)
    assert marker.exists()
    assert CheckpointLoader._schemes[''] is \
        mmengine_checkpoint.load_from_local
