# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/misc/print_config.py``: the resolved config, overrides applied."""
from mmengine.config import Config

from .tool_helpers import TINY_CONFIG, run_tool


def test_print_config_applies_cfg_options(tmp_path):
    saved = tmp_path / 'resolved.py'
    proc = run_tool('misc/print_config.py', TINY_CONFIG, '--save-path',
                    saved, '--cfg-options', 'train_cfg.max_iters=1234',
                    'train_dataloader.mlm.sampling_ratio=0.05')
    out = proc.stdout
    assert out.startswith('Config:\n')
    assert 'max_iters=1234' in out and 'max_iters=1000' not in out
    # the _base_ files are merged: the entries' data sets are spelled out
    assert "type='TextLinesDataset'" in out
    cfg = Config.fromfile(str(saved))
    assert cfg.train_cfg.max_iters == 1234
    assert cfg.train_dataloader.mlm.sampling_ratio == 0.05
    assert cfg.train_dataloader.detection.sampling_ratio == 0.15
