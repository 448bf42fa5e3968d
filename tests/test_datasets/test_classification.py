# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import os.path as osp

import pytest

from mmupv2.datasets import AnnotationError, UPv2ClassificationDataset
from mmupv2.datasets.shapes import SHAPES

PIPELINE = [dict(type='mmpretrain.LoadImageFromFile'),
            dict(type='PackUPv2Inputs')]


def _build(root, ann_file='classification/val.txt'):
    return UPv2ClassificationDataset(
        data_root=root, ann_file=ann_file, data_prefix='images',
        classes=osp.join(root, 'classification', 'classes.txt'),
        pipeline=PIPELINE)


def test_loads_generated_data(shapes_root):
    ds = _build(shapes_root)
    assert len(ds) == 6 and ds.CLASSES == SHAPES
    packed = ds[2]
    assert packed['inputs'].shape == (3, 96, 96)
    sample = packed['data_samples']
    assert sample.task == 'classification'
    assert 0 <= int(sample.gt_label) < len(SHAPES)


@pytest.mark.parametrize('line,match', [
    ('val/000000.png', "expected '<path> <label>'"),
    ('val/000000.png seven', 'not an integer'),
    ('val/000000.png 7', r'outside \[0, 7\)'),
])
def test_bad_lines(shapes_root, tmp_path, line, match):
    path = tmp_path / 'list.txt'
    path.write_text(f'val/000001.png 0\n{line}\n')
    with pytest.raises(AnnotationError, match=match) as info:
        _build(shapes_root, str(path))
    assert str(path) in str(info.value) and 'line 2' in str(info.value)


def test_missing_image(shapes_root, tmp_path):
    path = tmp_path / 'list.txt'
    path.write_text('val/nothing_here.png 0\n')
    with pytest.raises(FileNotFoundError, match='nothing_here.png'):
        _build(shapes_root, str(path))[0]
