# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A config stored in a checkpoint is parsed as data, never executed
(mmupv2/utils/checkpoint_config.py)."""
import os.path as osp
import shlex

import pytest
from mmengine.config import Config

from mmupv2.utils import (
    UnsafeConfigError,
    config_from_checkpoint,
    config_from_text,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = [
    osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py'),
    osp.join(ROOT, 'configs', 'uniperceiver_v2',
             'upv2_lite0-minilm_shapes.py'),
    osp.join(ROOT, 'tests', 'data', 'configs', 'upv2_tiny_random.py'),
]


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_pretty_text_round_trips(path):
    """What mmengine's Runner stores (``cfg.pretty_text``) parses to the
    same config as executing it would give."""
    text = Config.fromfile(path).pretty_text
    parsed = config_from_checkpoint(dict(meta=dict(cfg=text)), 'ckpt.pth')
    assert parsed.to_dict() == Config.fromstring(text, '.py').to_dict()


def test_message_hub_copy_is_read_too():
    text = "model = dict(type='M', size=-2, ratios=(0.5, inf))"
    cfg = config_from_checkpoint(
        dict(message_hub=dict(runtime_info=dict(cfg=text))))
    assert cfg.model.size == -2 and cfg.model.ratios[1] == float('inf')
    cfg = config_from_text("a = dict({'x.y': 1}, z=[1, {2}])")
    assert cfg.a == {'x.y': 1, 'z': [1, {2}]}


@pytest.mark.parametrize('code', [
    "import os\nos.system('touch {marker}')\nmodel = dict(type='M')",
    "model = dict(type=__import__('os').system('touch {marker}'))",
    "model = dict(type='M')\nopen('{marker}', 'w')",
    "model = (lambda: open('{marker}', 'w'))()",
    "model = dict(**{{'a': open('{marker}', 'w')}})",
    "model = [x for x in open('{marker}', 'w')]",
    "model = dict(type='M')\ndef f():\n    pass",
])
def test_code_is_refused_not_run(code, tmp_path):
    marker = tmp_path / 'ran'
    text = code.format(marker=shlex.quote(str(marker))[1:-1])
    with pytest.raises(UnsafeConfigError) as info:
        config_from_checkpoint(dict(meta=dict(cfg=text)), 'evil.pth')
    assert not marker.exists()
    message = str(info.value)
    assert 'evil.pth' in message and 'config file' in message
    assert 'line ' in message


def test_imports_outside_openmmlab_are_refused():
    text = "custom_imports = dict(imports=['mmupv2.testing', 'os'])"
    with pytest.raises(UnsafeConfigError, match="imports 'os'"):
        config_from_text(text, 'ckpt.pth')
    ok = config_from_text("custom_imports = dict(imports=['mmupv2.testing'])")
    assert ok.custom_imports.imports == ['mmupv2.testing']


def test_no_config_or_not_text():
    with pytest.raises(KeyError, match='pass the config file'):
        config_from_checkpoint(dict(state_dict={}), 'ckpt.pth')
    with pytest.raises(UnsafeConfigError, match='not text'):
        config_from_text(b'model = 1', 'ckpt.pth')
    with pytest.raises(UnsafeConfigError, match='does not parse'):
        config_from_text('model = (', 'ckpt.pth')
