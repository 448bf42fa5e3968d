# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import os.path as osp

import pytest
from mmengine.config import Config

from mmupv2.engine.optimizers import check_optimizer_type
from mmupv2.engine.runner.launch import build_runner

CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'data', 'configs', 'toy_multitask.py')


def test_misspelt_optimizer_names_the_key_and_the_close_match(tmp_path):
    """mmengine fails late with "None is not a callable object"; the
    runner is not even built here, and the message says what was meant."""
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.optim_wrapper.optimizer.type = 'MTAdamw'
    with pytest.raises(KeyError) as info:
        build_runner(cfg)
    message = str(info.value)
    assert "optim_wrapper.optimizer.type='MTAdamw'" in message
    assert "did you mean 'MTAdamW'" in message


def test_registered_and_unknown_optimizer_types():
    for name in ('MTAdamW', 'AdamW', 'SGD'):  # mmupv2's and torch's
        check_optimizer_type(dict(optimizer=dict(type=name)), 'mmupv2')
    check_optimizer_type(None)  # nothing to check
    with pytest.raises(KeyError, match=r'registered: .*MTAdamW'):
        check_optimizer_type(dict(optimizer=dict(type='Zzz')), 'mmupv2')
