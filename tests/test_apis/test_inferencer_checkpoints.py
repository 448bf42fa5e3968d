# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""UniPerceiverInferencer's weights: read weights-only (local and http),
strictly (a checkpoint of another model raises), and a stored config is
parsed, never executed (docs/checkpoints.md)."""
import pytest
import torch

from mmupv2.apis import UniPerceiverInferencer
from mmupv2.testing import ToyMultiTaskModel
from mmupv2.utils import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    UnsafeConfigError,
)

from ..untrusted import RunsCode, served_directory


@pytest.fixture
def no_trust(monkeypatch):
    monkeypatch.delenv('MMUPV2_TRUST_CHECKPOINTS', raising=False)


def test_checkpoint_of_another_model(tiny_config, tmp_path, no_trust):
    toy = ToyMultiTaskModel(tasks=dict(classification=3))
    path = str(tmp_path / 'toy.pth')
    torch.save(
        dict(state_dict=toy.state_dict(),
             meta=dict(dataset_meta=dict(classes=('x', 'y')))), path)
    with pytest.raises(CheckpointMismatchError) as info:
        UniPerceiverInferencer(tiny_config, weights=path)
    message = str(info.value)
    assert message.startswith(f'{path} does not fit the model (')
    assert 'unexpected keys (4): trunk.0.weight, trunk.0.bias, heads.' \
        in message
    assert 'allow_partial=True' in message
    partial = UniPerceiverInferencer(
        tiny_config, weights=path, allow_partial=True)
    # the foreign class names are not adopted
    assert partial.classes('classify')[0] == 'circle'


def test_pickle_with_code_local_and_remote(tiny_config, tmp_path,
                                           monkeypatch, no_trust):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    marker = tmp_path / 'ran'
    served = tmp_path / 'served'
    served.mkdir()
    path = str(served / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=RunsCode(marker))), path)
    with pytest.raises(UnsafeCheckpointError, match='trust_checkpoint=True'):
        UniPerceiverInferencer(tiny_config, weights=path)
    assert not marker.exists()
    with served_directory(served) as base:
        url = f'{base}/evil.pth'
        with pytest.raises(UnsafeCheckpointError) as info:
            UniPerceiverInferencer(tiny_config, weights=url)
        assert not marker.exists()
        assert url in str(info.value)
        # model=None reads the config from the checkpoint: still nothing
        with pytest.raises(UnsafeCheckpointError):
            UniPerceiverInferencer(None, weights=url)
    assert not marker.exists()


def test_stored_config_is_not_executed(inferencer, tmp_path, no_trust):
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'cfg_code.pth')
    code = (f"import os\nos.system('touch {marker}')\n" +
            inferencer.cfg.pretty_text)
    torch.save(
        dict(state_dict=inferencer.model.state_dict(), meta=dict(cfg=code)),
        path)
    with pytest.raises(UnsafeConfigError, match='Pass the config file'):
        UniPerceiverInferencer(None, weights=path)
    assert not marker.exists()
    # the same checkpoint with the plain config: built from it, as data
    torch.save(
        dict(state_dict=inferencer.model.state_dict(),
             meta=dict(cfg=inferencer.cfg.pretty_text)), path)
    rebuilt = UniPerceiverInferencer(None, weights=path)
    assert rebuilt.classes('detect') == inferencer.classes('detect')
    for key, value in inferencer.model.state_dict().items():
        torch.testing.assert_close(rebuilt.model.state_dict()[key], value)
