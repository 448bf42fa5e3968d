# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""tools/slurm_train.sh and tools/slurm_test.sh with a stand-in ``srun``
that records its command line and environment instead of submitting."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from .tool_helpers import ROOT, load_tool

FAKE_SRUN = '''#!{python}
import json, os, sys
with open({record!r}, 'w') as f:
    json.dump(dict(argv=sys.argv[1:], pythonpath=os.environ.get(
        'PYTHONPATH', '')), f)
'''


def run_slurm_script(tmp_path, script, *args, **env_vars):
    """Run ``bash tools/<script> ARGS`` with the stand-in srun first on
    PATH; return what srun received."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    record = tmp_path / 'srun.json'
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN.format(python=sys.executable,
                                     record=str(record)))
    srun.chmod(0o755)
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
               **env_vars)
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', script), *args],
                          cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(record.read_text())


def split_srun(argv):
    """srun's own options (before the program) and the program's argv."""
    program = argv.index('python')
    return argv[:program], argv[program + 1:]


@pytest.mark.parametrize('gpus,per_node', [(None, None), ('16', '8')])
def test_slurm_train(tmp_path, gpus, per_node):
    env = {} if gpus is None else dict(GPUS=gpus, GPUS_PER_NODE=per_node,
                                       SRUN_ARGS='--time=1:00:00')
    got = run_slurm_script(tmp_path, 'slurm_train.sh', 'dev', 'upv2',
                           'configs/x.py', 'work_dirs/x', '--amp',
                           '--resume', **env)
    srun_opts, program = split_srun(got['argv'])
    ntasks = gpus or '8'
    assert srun_opts[:2] == ['-p', 'dev']
    for opt in ('--job-name=upv2', f'--gres=gpu:{per_node or 8}',
                f'--ntasks={ntasks}', f'--ntasks-per-node={per_node or 8}',
                '--cpus-per-task=5', '--kill-on-bad-exit=1'):
        assert opt in srun_opts
    assert ('--time=1:00:00' in srun_opts) == (gpus is not None)
    script, *script_args = program[program.index('-u') + 1:]
    assert osp.samefile(script, osp.join(ROOT, 'tools', 'train.py'))
    assert script_args == ['configs/x.py', '--work-dir=work_dirs/x',
                           '--launcher=slurm', '--amp', '--resume']
    # the repository is importable in every task
    assert osp.samefile(got['pythonpath'].split(os.pathsep)[0],
                        osp.join(ROOT, 'tools', '..'))
    # and train.py accepts exactly this command line
    args = load_tool('train.py').parse_args(script_args)
    assert (args.config, args.work_dir, args.launcher, args.amp) == (
        'configs/x.py', 'work_dirs/x', 'slurm', True)


def test_slurm_test(tmp_path):
    got = run_slurm_script(tmp_path, 'slurm_test.sh', 'dev', 'eval',
                           'configs/x.py', 'ckpt.pth', '--out-metrics',
                           'm.json', GPUS='4', GPUS_PER_NODE='4')
    srun_opts, program = split_srun(got['argv'])
    for opt in ('--job-name=eval', '--gres=gpu:4', '--ntasks=4',
                '--ntasks-per-node=4'):
        assert opt in srun_opts
    script, *script_args = program[program.index('-u') + 1:]
    assert osp.samefile(script, osp.join(ROOT, 'tools', 'test.py'))
    assert script_args == ['configs/x.py', 'ckpt.pth', '--launcher=slurm',
                           '--out-metrics', 'm.json']
    args = load_tool('test.py').parse_args(script_args)
    assert (args.config, args.checkpoint, args.launcher,
            args.out_metrics) == ('configs/x.py', 'ckpt.pth', 'slurm',
                                  'm.json')
