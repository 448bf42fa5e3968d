# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Kill a training run with SIGKILL, resume it: the weights at the end are
bitwise those of a run that was never interrupted (tools/train.py on the
tiny model of every task: MoE gate noise, MLM masking, denoising queries,
random flips, six loaders)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
TIMEOUT = 300
ITERS, EVERY = 8, 4


def _train(work, log, *extra) -> subprocess.Popen:
    cmd = [
        sys.executable, osp.join(ROOT, 'tools', 'train.py'), CONFIG,
        '--work-dir', str(work), *extra, '--cfg-options',
        f'train_cfg.max_iters={ITERS}', f'train_cfg.val_begin={ITERS + 1}',
        f'default_hooks.checkpoint.interval={EVERY}',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1'
    ]
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.Popen(
        cmd, cwd=str(work.parent), env=env, stdout=open(log, 'w'),
        stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen, log) -> None:
    try:
        code = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 0, open(log).read()[-3000:]


def _state(path) -> dict:
    ckpt = torch.load(str(path), map_location='cpu', weights_only=False)
    return ckpt['state_dict']


@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted(tmp_path, shapes_root):
    (tmp_path / 'data').mkdir()
    os.symlink(shapes_root, tmp_path / 'data' / 'shapes')
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    # the uninterrupted run and the one to kill, side by side
    full_proc = _train(full, tmp_path / 'full.log')
    cut_proc = _train(cut, tmp_path / 'cut.log')
    try:
        # the checkpoint is complete once last_checkpoint names it
        last = cut / 'last_checkpoint'
        deadline = time.monotonic() + TIMEOUT
        while not (last.is_file()
                   and last.read_text().strip().endswith(f'iter_{EVERY}.pth')):
            assert cut_proc.poll() is None, open(tmp_path / 'cut.log').read()
            assert time.monotonic() < deadline, 'no checkpoint in time'
            time.sleep(0.05)
        cut_proc.send_signal(signal.SIGKILL)
        cut_proc.wait(timeout=TIMEOUT)
    finally:
        if cut_proc.poll() is None:
            cut_proc.kill()
    resumed = tmp_path / 'resumed.log'
    _wait(_train(cut, resumed, '--resume', str(cut / f'iter_{EVERY}.pth')),
          resumed)
    _wait(full_proc, tmp_path / 'full.log')
    log = resumed.read_text()
    assert f'random state of iteration {EVERY} restored' in log, log[-3000:]
    assert f'Iter(train) [{EVERY + 1}/{ITERS}]' in log

    expected = _state(full / f'iter_{ITERS}.pth')
    got = _state(cut / f'iter_{ITERS}.pth')
    assert list(got) == list(expected)
    differ = [k for k in expected if not torch.equal(got[k], expected[k])]
    assert not differ, f'{len(differ)} of {len(expected)} tensors differ: ' \
        f'{differ[:10]}'
