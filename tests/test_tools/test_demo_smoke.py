# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The main job end to end, small: a few iterations of every task on a tiny
shapes set, then evaluation of every task, metrics.json and drawings."""
import json
import os.path as osp
import subprocess
import sys

from mmupv2.datasets.shapes import generate_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_smoke(tmp_path):
    generate_shapes(str(tmp_path / 'data' / 'shapes'), num_train=16,
                    num_val=4, seed=1, img_size=96)
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'misc', 'demo.py'),
         '--max-iters', '8', '--work-dir', str(work), '--num-vis', '1'],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work / 'metrics.json').read_text())
    assert set(summary) == {'classification', 'detection',
                            'instance_segmentation', 'captioning',
                            'retrieval'}
    assert set(summary['retrieval']) == {'i2t_R@1', 't2i_R@1'}
    for fields in summary.values():
        for value in fields.values():
            assert 0 <= value <= 100 or value == -100  # COCO's "no data"
    assert 'mmupv2 demo: shapes val' in proc.stdout
    drawn = list((work / 'vis').rglob('*.*'))
    assert drawn, 'no drawn predictions'
