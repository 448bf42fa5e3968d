# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json
import os.path as osp

import pytest

from mmupv2.datasets import (
    AnnotationError,
    KarpathyCaptionDataset,
    KarpathyRetrievalDataset,
)

PIPELINE = [dict(type='mmpretrain.LoadImageFromFile'),
            dict(type='PackUPv2Inputs')]
ANN = 'annotations/karpathy_shapes.json'


def _kwargs(root, **kwargs):
    return dict(data_root=root, ann_file=ANN,
                data_prefix=dict(img_path='images'), pipeline=PIPELINE,
                **kwargs)


def test_caption_train_and_test(shapes_root):
    train = KarpathyCaptionDataset(**_kwargs(shapes_root, split='train'))
    assert len(train) == 12 * 3  # one sample per sentence
    sample = train[0]['data_samples']
    assert sample.task == 'captioning' and len(sample.gt_caption) == 1
    test = KarpathyCaptionDataset(
        **_kwargs(shapes_root, split='val', test_mode=True))
    assert len(test) == 6
    packed = test[0]
    assert packed['inputs'].shape == (3, 96, 96)
    # image_id matches the COCO-caption ground truth of the metric
    gt = json.load(
        open(osp.join(shapes_root, 'annotations', 'captions_val.json')))
    ids = {img['id'] for img in gt['images']}
    assert packed['data_samples'].image_id in ids
    assert len(packed['data_samples'].gt_caption) == 3


def test_retrieval_fields(shapes_root):
    test = KarpathyRetrievalDataset(
        **_kwargs(shapes_root, split='val', test_mode=True))
    assert (test.img_size, test.text_size) == (6, 18)
    info = test.get_data_info(1)
    assert info['gt_text_id'] == [3, 4, 5] and info['gt_image_id'] == [1] * 3
    train = KarpathyRetrievalDataset(**_kwargs(shapes_root, split='train'))
    assert len(train) == 36
    sample = train[4]['data_samples']
    assert sample.task == 'retrieval' and sample.text_id == 4
    assert isinstance(sample.text, str)


def test_bad_files(shapes_root, tmp_path):
    path = tmp_path / 'k.json'
    path.write_text('{"images": [{"filename": "x.png", "imgid": 0, '
                    '"split": "train", "sentences": [{"raw": " "}]}]}')
    with pytest.raises(AnnotationError, match=r'images\[0\]'):
        KarpathyCaptionDataset(**dict(_kwargs(shapes_root),
                                      ann_file=str(path)))
    path.write_text('{"images": [{"filename": "x.png"}]}')
    with pytest.raises(AnnotationError, match='lacks'):
        KarpathyCaptionDataset(**dict(_kwargs(shapes_root),
                                      ann_file=str(path)))
    path.write_text('[1, 2')
    with pytest.raises(AnnotationError, match='malformed JSON'):
        KarpathyRetrievalDataset(**dict(_kwargs(shapes_root),
                                        ann_file=str(path)))
    with pytest.raises(AnnotationError, match="no image of split"):
        KarpathyCaptionDataset(**_kwargs(shapes_root, split='test'))
