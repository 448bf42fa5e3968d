# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json

import pytest

from mmupv2.datasets import AnnotationError, ImageTextPairDataset

PIPELINE = [dict(type='mmpretrain.LoadImageFromFile'),
            dict(type='PackUPv2Inputs')]


def test_jsonl_from_generator(shapes_root):
    ds = ImageTextPairDataset(
        data_root=shapes_root, ann_file='annotations/pairs_val.jsonl',
        pipeline=PIPELINE, task='retrieval', dataset_name='shapes_pairs')
    assert len(ds) == 18
    sample = ds[0]['data_samples']
    assert sample.task == 'retrieval' and sample.dataset_name == \
        'shapes_pairs'
    assert sample.text == sample.gt_caption[0]


def test_tsv(shapes_root, tmp_path):
    path = tmp_path / 'pairs.tsv'
    path.write_text('images/val/000000.png\ta red star\n\n'
                    'images/val/000001.png\ta blue ring\n')
    ds = ImageTextPairDataset(data_root=shapes_root, ann_file=str(path),
                              pipeline=PIPELINE)
    assert len(ds) == 2
    packed = ds[1]
    assert packed['inputs'].shape == (3, 96, 96)
    assert packed['data_samples'].gt_caption == ['a blue ring']
    assert packed['data_samples'].task == 'captioning'


@pytest.mark.parametrize('suffix,content,match', [
    ('.jsonl', '{"image": "a.png", "caption": "x"}\n{"image": \n',
     'malformed JSON'),
    ('.jsonl', json.dumps({'image': 'a.png'}) + '\n', "'caption'"),
    ('.jsonl', json.dumps({'image': 'a.png', 'caption': ' '}) + '\n',
     'empty caption'),
    ('.tsv', 'a.png\tx\ty\n', 'got 3 field'),
])
def test_bad_lines(shapes_root, tmp_path, suffix, content, match):
    path = tmp_path / f'pairs{suffix}'
    path.write_text(content)
    with pytest.raises(AnnotationError, match=match) as info:
        ImageTextPairDataset(data_root=shapes_root, ann_file=str(path))
    assert str(path) in str(info.value) and 'line' in str(info.value)


def test_missing_image(shapes_root, tmp_path):
    path = tmp_path / 'pairs.tsv'
    path.write_text('images/val/none.png\ta red star\n')
    ds = ImageTextPairDataset(data_root=shapes_root, ann_file=str(path),
                              pipeline=PIPELINE)
    with pytest.raises(FileNotFoundError, match='none.png'):
        ds[0]
