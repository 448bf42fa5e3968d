# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""tools/misc/config_for_dataset.py: a copy of a config reading other data."""
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'misc', 'config_for_dataset.py')
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                  'upv2_lite0-minilm_shapes.py')


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                          text=True)


def test_copy_elsewhere_reads_the_new_data(tmp_path):
    classes_file = tmp_path / 'classes.txt'
    classes_file.write_text('pentagon\nhexagon\n\nellipse\n')
    out = tmp_path / 'sub' / 'other.py'
    proc = _run(CONFIG, '--out', str(out), '--classes-file',
                str(classes_file), '--set', 'data_root=data/other/',
                'img_scale=(200, 120)', 'karpathy_val_split=test')
    assert proc.returncode == 0, proc.stderr
    assert 'wrote' in proc.stdout and "'data/other/'" in proc.stdout
    cfg = Config.fromfile(str(out))  # its _base_ files resolve from sub/
    assert cfg.classes == ('pentagon', 'hexagon', 'ellipse')
    assert cfg.img_scale == (200, 120)
    loader = cfg.train_dataloader.classification.dataloader
    assert loader.dataset.data_root == 'data/other/'
    assert loader.dataset.classes == cfg.classes
    assert cfg.val_dataloader.captioning.dataset.split == 'test'
    # nothing else changed: the multi-line classes tuple is replaced whole,
    # the lines after it are the original's
    original = Config.fromfile(CONFIG)
    assert cfg.model.decoder == original.model.decoder
    assert cfg.optim_wrapper == original.optim_wrapper
    text = out.read_text()
    assert "'ring')" not in text and text.count('classes = ') == 1
    assert text.splitlines()[-5:] == open(CONFIG).read().splitlines()[-5:]


def test_unknown_variable_is_refused(tmp_path):
    out = tmp_path / 'x.py'
    proc = _run(CONFIG, '--out', str(out), '--set', 'dataroot=data/x/')
    assert proc.returncode == 2
    assert 'has no top-level "dataroot = ..."' in proc.stderr
    assert 'upv2_lite0-minilm_shapes.py' in proc.stderr
    assert not out.exists()
    proc = _run(CONFIG, '--out', str(out), '--set', 'data_root')
    assert proc.returncode == 2 and 'NAME=VALUE' in proc.stderr
