# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Running the scripts of ``tools/``: imported as modules (to call their
functions) or as a user would, in a subprocess."""
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType

from ..scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                       'upv2_tiny_shapes.py')
TIMEOUT = 240


def load_tool(path: str) -> ModuleType:
    """The script ``tools/<path>`` as a module."""
    return load_script(osp.join(ROOT, 'tools', path))


def run_tool(path: str, *args: str, cwd: str = ROOT
             ) -> subprocess.CompletedProcess:
    """Run ``python tools/<path> ARGS`` in ``cwd``; assert it succeeds."""
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    cmd = [sys.executable, osp.join(ROOT, 'tools', path), *map(str, args)]
    proc = subprocess.run(cmd, cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-3000:]}')
    return proc
