# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A truncated checkpoint or a text file given as weights: the error names
the file and says what it is, instead of torch's "failed finding central
directory" / "invalid load key, '#'"."""
import io

import pytest
import torch

from mmupv2.utils.checkpoint import load_checkpoint
from mmupv2.utils.checkpoint_file import (
    InvalidCheckpointError,
    unreadable_reason,
)


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / 'iter_10.pth'
    torch.save(dict(state_dict={'w': torch.arange(3000.)}), path)
    return path


def test_truncated_checkpoint_names_the_file(checkpoint, tmp_path):
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(checkpoint.read_bytes()[:2000])
    with pytest.raises(InvalidCheckpointError) as info:
        load_checkpoint(str(truncated))
    message = str(info.value)
    assert str(truncated) in message
    assert 'not a valid PyTorch checkpoint' in message
    assert 'truncated' in message and 'again' in message
    assert 'central directory' in str(info.value.__cause__)


def test_text_file_as_weights_names_the_file(tmp_path):
    text = tmp_path / 'config.py'
    text.write_text('# a config, not weights\nmodel = dict()\n')
    with pytest.raises(InvalidCheckpointError) as info:
        load_checkpoint(str(text))
    message = str(info.value)
    assert str(text) in message
    assert "starting with b'# a config" in message
    assert 'work_dirs' in message  # what to pass instead
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(InvalidCheckpointError, match='empty'):
        load_checkpoint(str(empty))


def test_valid_checkpoints_are_not_suspected(checkpoint):
    assert unreadable_reason(str(checkpoint)) is None
    buffer = io.BytesIO(checkpoint.read_bytes())
    buffer.seek(5)
    assert unreadable_reason(buffer) is None and buffer.tell() == 5
    legacy = io.BytesIO()
    torch.save({'w': torch.ones(2)}, legacy,
               _use_new_zipfile_serialization=False)
    assert unreadable_reason(legacy) is None
    loaded = load_checkpoint(str(checkpoint))
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3000.))
