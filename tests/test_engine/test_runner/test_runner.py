# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The configs' runner reads every checkpoint weights-only, however a user
script builds it (mmupv2/engine/runner/runner.py): a pickled payload in
``load_from`` / ``resume`` / a ``Pretrained`` init_cfg, served over http or
local, runs nothing and stops the run with the clear error."""
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

import mmupv2  # noqa: F401  (what a user script imports)
from mmupv2.engine.runner import UPv2Runner
from mmupv2.engine.runner.launch import MultiTaskFlexibleRunner, build_runner
from mmupv2.registry import RUNNERS as MMUPV2_RUNNERS
from mmupv2.utils import TRUST_ENV, UnsafeCheckpointError

from ...untrusted import write_payload

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
TOY = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


@pytest.fixture
def payload(tmp_path, http_root, monkeypatch):
    """``(marker, {'http': URL, 'local': path})`` of a checkpoint whose
    unpickling writes ``marker``; trust is not asked for."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    root, base = http_root
    marker = tmp_path / 'ran'
    write_payload(root / 'evil.pth', marker)
    local = write_payload(tmp_path / 'evil_local.pth', marker)
    return marker, dict(http=f'{base}/evil.pth', local=local)


@pytest.fixture
def tiny_cfg(tmp_path, shapes_root, monkeypatch):
    """The tiny config as a user script reads it, on the session's small
    shapes benchmark (``data/shapes`` under the working directory)."""
    (tmp_path / 'data').mkdir()
    os.symlink(shapes_root, tmp_path / 'data' / 'shapes')
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg.train_cfg.max_iters = 1
    return cfg


def _assert_loaders_unchanged():
    assert CheckpointLoader._schemes[''] is \
        mmengine_checkpoint.load_from_local
    assert CheckpointLoader._schemes['http://'] is \
        mmengine_checkpoint.load_from_http


@pytest.mark.parametrize('where', ['http', 'local'])
def test_user_script_load_from_payload_runs_nothing(where, tiny_cfg,
                                                     payload):
    """``cfg.load_from = URL; RUNNERS.build(cfg)`` (the runner the config
    names, as mmdet's tools build it): refused, the marker not written."""
    marker, sources = payload
    assert tiny_cfg.runner_type == 'mmupv2.UPv2Runner'
    tiny_cfg.load_from = sources[where]
    runner = RUNNERS.build(tiny_cfg)  # mmengine's registry
    assert type(runner) is UPv2Runner
    assert type(MMUPV2_RUNNERS.build(tiny_cfg)) is UPv2Runner
    with pytest.raises(UnsafeCheckpointError, match='evil') as info:
        runner.train()
    assert not marker.exists()
    assert '--trust-checkpoint' in str(info.value)
    _assert_loaders_unchanged()


def test_user_script_resume_payload_runs_nothing(tiny_cfg, payload):
    marker, sources = payload
    tiny_cfg.resume = True
    tiny_cfg.load_from = sources['http']
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        UPv2Runner.from_cfg(tiny_cfg).train()
    assert not marker.exists()
    _assert_loaders_unchanged()


def test_plain_mmengine_runner_is_refused_before_downloading(tiny_cfg,
                                                            payload):
    """``Runner.from_cfg(cfg)`` builds mmengine's own Runner whatever
    ``runner_type`` says; mmupv2's loops refuse to run in it with a
    ``load_from`` URL that mmengine would read with weights_only=False,
    and say how to build the runner instead. (A local file mmengine reads
    with torch's weights-only default: refused by torch.)"""
    marker, sources = payload
    tiny_cfg.load_from = sources['http']
    runner = Runner.from_cfg(tiny_cfg)
    with pytest.raises(RuntimeError, match=r'RUNNERS\.build\(cfg\)'):
        runner.train()
    with pytest.raises(RuntimeError, match='load_from='):
        runner.test()
    assert not marker.exists()
    tiny_cfg.load_from = sources['local']
    with pytest.raises(pickle.UnpicklingError):
        Runner.from_cfg(tiny_cfg).test()
    assert not marker.exists()


@pytest.mark.parametrize('runner_type',
                         ['mmupv2.UPv2Runner', 'FlexibleRunner'])
def test_pretrained_init_cfg_payload_runs_nothing(runner_type, tmp_path,
                                                  payload):
    """``init_cfg=dict(type='Pretrained', checkpoint=URL)`` of a model that
    is not mmupv2's own (whose ``init_weights`` is safe by itself)."""
    marker, sources = payload
    cfg = Config.fromfile(TOY)
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg.runner_type = runner_type
    cfg.model.init_cfg = dict(type='Pretrained', checkpoint=sources['http'])
    runner = build_runner(cfg)
    assert isinstance(runner, (UPv2Runner, MultiTaskFlexibleRunner))
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        runner.train()
    assert not marker.exists()
    _assert_loaders_unchanged()


def test_weights_load_and_trust_is_honoured(tmp_path, payload,
                                            monkeypatch):
    """A checkpoint of the configs' runner loads through it; a trusted
    payload (``MMUPV2_TRUST_CHECKPOINTS=1``) is read with
    ``weights_only=False``, as everywhere."""
    marker, sources = payload
    cfg = Config.fromfile(TOY)
    cfg.runner_type = 'mmupv2.UPv2Runner'
    cfg.work_dir = str(tmp_path / 'a')
    cfg.train_cfg.max_iters = 6
    first = build_runner(cfg)
    first.train()
    cfg.work_dir = str(tmp_path / 'b')
    cfg.load_from = osp.join(tmp_path, 'a', 'iter_6.pth')
    second = build_runner(cfg)
    second.load_or_resume()
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value), key

    monkeypatch.setenv(TRUST_ENV, '1')
    cfg.work_dir = str(tmp_path / 'c')
    cfg.load_from = sources['local']
    build_runner(cfg).load_or_resume()
    assert marker.exists()
