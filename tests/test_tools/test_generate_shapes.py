# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _generate(out, *args):
    return subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'misc', 'generate_shapes.py'), '--out',
        str(out), *args
    ], capture_output=True, text=True, check=True)


def test_cli_writes_every_format(tmp_path):
    out = tmp_path / 's'
    proc = _generate(out, '--num-train', '5', '--num-val', '2', '--seed', '1',
                     '--img-size', '64')
    assert 'wrote 5 train / 2 val images' in proc.stdout
    for rel in ('images/train/000004.png', 'images/val/000001.png',
                'annotations/instances_train.json',
                'annotations/instances_val.json',
                'annotations/captions_val.json',
                'annotations/karpathy_shapes.json',
                'annotations/pairs_train.jsonl', 'classification/train.txt',
                'classification/classes.txt', 'text/train.txt',
                'tokenizer/tokenizer.json', 'meta.json'):
        assert (out / rel).exists(), rel
    meta = json.loads((out / 'meta.json').read_text())
    assert (meta['num_train'], meta['num_val'], meta['seed'],
            meta['img_size']) == (5, 2, 1, 64)


def test_cli_other_style(tmp_path):
    """``--style other``: the same formats with other classes and words."""
    out = tmp_path / 'o'
    proc = _generate(out, '--num-train', '6', '--num-val', '2', '--style',
                     'other', '--img-size', '72')
    assert 'of 8 classes (pentagon, hexagon' in proc.stdout
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['style'] == 'other' and meta['classes'][-1] == 'trapezoid'
    assert (out / 'classification' / 'classes.txt').read_text().split() == (
        meta['classes'])


def test_cli_harder_sets(tmp_path):
    """``--style close`` and ``--style photos``: the same files, ten
    classes each, per-class counts in meta.json."""
    for style, first in (('close', 'circle, octagon'), ('photos',
                                                        'cat, cup')):
        out = tmp_path / style
        proc = _generate(out, '--num-train', '4', '--num-val', '2',
                         '--style', style, '--img-size', '96')
        assert f'of 10 classes ({first}' in proc.stdout
        meta = json.loads((out / 'meta.json').read_text())
        assert meta['style'] == style
        assert sum(meta['class_counts']['train']['classification']) == 4
        assert (out / 'annotations' / 'karpathy_shapes.json').exists()
