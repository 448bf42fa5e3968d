# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/model_converters/publish_model.py``: the published file has the
SHA-256 prefix in its name, only ``meta`` + ``state_dict``, and loads
weights-only and strictly into its model."""
import datetime
import hashlib
import os.path as osp
import re

import numpy as np
import torch
from mmengine.config import Config

from mmupv2.utils import load_model_checkpoint, register_all_modules

from ..test_models.tiny_shapes_model import build_model
from .tool_helpers import TINY_CONFIG, load_tool, run_tool


def _training_checkpoint(model, path, **meta) -> None:
    """What a training run writes: weights, optimizer moments, message hub
    (numpy numbers), schedulers."""
    state = model.state_dict()
    torch.save({
        'meta': dict(iter=8, seed=np.int64(0), cfg='model = dict()',
                     dataset_meta=dict(classes=('circle', 'square')),
                     **meta),
        'state_dict': state,
        'optimizer': dict(state={
            0: dict(exp_avg=torch.ones(3), exp_avg_sq=torch.ones(3))
        }, param_groups=[dict(lr=1e-4, params=[0])]),
        'message_hub': dict(runtime_info=dict(iter=np.int64(8))),
        'param_schedulers': [dict(last_epoch=8)],
    }, path)


def test_publish_tiny_model(tmp_path, shapes_root):
    register_all_modules()
    cfg = Config.fromfile(TINY_CONFIG)
    root = shapes_root.rstrip('/') + '/'
    model = build_model(cfg, root)
    src = tmp_path / 'iter_8.pth'
    _training_checkpoint(model, str(src))

    proc = run_tool('model_converters/publish_model.py', src,
                    tmp_path / 'upv2_tiny.pth')
    match = re.search(r'The published model is saved at (\S+)\.\n',
                      proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    out = match.group(1)
    with open(out, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert osp.basename(out) == f'upv2_tiny-{sha[:8]}.pth'
    assert not osp.exists(tmp_path / 'upv2_tiny.pth')
    assert 'Key `optimizer` will be removed' in proc.stdout + proc.stderr

    published = torch.load(out, map_location='cpu', weights_only=True)
    assert sorted(published) == ['meta', 'state_dict']
    assert published['meta']['seed'] == 0
    assert type(published['meta']['seed']) is int
    assert published['meta']['dataset_meta']['classes'] == ('circle',
                                                             'square')

    torch.manual_seed(1)
    other = build_model(cfg, root)  # other weights ...
    load_model_checkpoint(other, out)  # ... replaced, strictly
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def test_publish_drops_objects_that_are_not_data(tmp_path):
    tool = load_tool('model_converters/publish_model.py')
    src = tmp_path / 'epoch_1.pth'
    layer = torch.nn.Linear(2, 3)
    _training_checkpoint(layer, str(src), when=datetime.date(2026, 1, 1),
                         scores=np.array([1.5, 2.5]))
    out = tool.process_checkpoint(str(src), str(tmp_path / 'lin.pth'),
                                  trust=True)
    published = torch.load(out, weights_only=True)
    assert 'when' not in published['meta']
    assert published['meta']['scores'] == [1.5, 2.5]
    assert re.fullmatch(r'lin-[0-9a-f]{8}\.pth', osp.basename(out))
    layer_again = torch.nn.Linear(2, 3)
    load_model_checkpoint(layer_again, out)
    assert torch.equal(layer_again.weight, layer.weight)
