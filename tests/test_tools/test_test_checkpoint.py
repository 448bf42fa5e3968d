# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""tools/test.py refuses a checkpoint of another model (listing what does
not fit) unless --allow-partial, and a checkpoint that would run code
unless --trust-checkpoint; run as a user would, in subprocesses."""
import os
import os.path as osp
import subprocess
import sys

import torch

from mmupv2.testing import ToyMultiTaskModel

from ..untrusted import RunsCode

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_TOOL = osp.join(ROOT, 'tools', 'test.py')
EVAL_CONFIG = osp.join(ROOT, 'tests', 'data', 'configs',
                       'toy_multitask_eval.py')
TIMEOUT = 240


def _test_tool(checkpoint, work_dir, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.pop('MMUPV2_TRUST_CHECKPOINTS', None)
    return subprocess.run(
        [sys.executable, TEST_TOOL, EVAL_CONFIG, str(checkpoint),
         '--work-dir', str(work_dir), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _other_model_checkpoint(path) -> str:
    """A toy model with other heads: ``heads.classification`` (5, 16)
    instead of (3, 16), a ``detection`` head the config lacks, no
    ``retrieval`` head."""
    torch.manual_seed(0)
    model = ToyMultiTaskModel(tasks=dict(classification=5, detection=2))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)),
               str(path))
    return str(path)


def test_checkpoint_of_another_model(tmp_path):
    ckpt = _other_model_checkpoint(tmp_path / 'other.pth')
    proc = _test_tool(ckpt, tmp_path / 'strict')
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert 'CheckpointMismatchError' in log
    assert (f'{ckpt} does not fit the model (2 missing, 2 unexpected, 2 '
            'shape-mismatched keys)') in log
    assert 'missing keys (2): heads.retrieval.bias, heads.retrieval.weight' \
        in log
    assert 'heads.classification.weight: checkpoint torch.Size([5, 16])' \
        in log
    assert '--allow-partial' in log
    assert 'accuracy/top1' not in log  # no metrics table

    proc = _test_tool(ckpt, tmp_path / 'partial', '--allow-partial')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'WARNING' in log and 'does not fit the model' in log
    assert 'a partial load was asked for' in log
    assert 'accuracy/top1' in log


def test_checkpoint_that_runs_code(tmp_path):
    marker = tmp_path / 'ran'
    model = ToyMultiTaskModel(tasks=dict(classification=3, retrieval=4))
    ckpt = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(payload=RunsCode(marker))), ckpt)
    proc = _test_tool(ckpt, tmp_path / 'work')
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert not marker.exists()
    assert 'UnsafeCheckpointError' in log and ckpt in log
    assert '--trust-checkpoint' in log

    # the explicit opt-in runs it, and says so
    proc = _test_tool(ckpt, tmp_path / 'trusted', '--trust-checkpoint')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert marker.exists()
    assert 'WARNING' in log and 'weights_only=False (trust=True)' in log
