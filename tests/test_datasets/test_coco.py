# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import copy
import json
import os.path as osp

import mmcv
import numpy as np
import pytest

from mmupv2.datasets import AnnotationError, UPv2CocoDataset
from mmupv2.datasets.shapes import SHAPES

PIPELINE = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackUPv2Inputs'),
]


def _build(root, ann_file='annotations/instances_val.json', **kwargs):
    return UPv2CocoDataset(
        data_root=root, ann_file=ann_file, data_prefix=dict(img='images/'),
        metainfo=dict(classes=SHAPES), pipeline=PIPELINE, **kwargs)


def _write(tmp_path, coco: dict) -> str:
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(coco))
    return str(path)


@pytest.fixture
def coco_val(shapes_root):
    return json.load(
        open(osp.join(shapes_root, 'annotations', 'instances_val.json')))


def test_loads_generated_data(shapes_root):
    ds = _build(shapes_root, task='instance_segmentation',
                dataset_name='shapes')
    assert len(ds) == 6
    packed = ds[0]
    sample = packed['data_samples']
    assert packed['inputs'].shape == (3, 96, 96)
    assert sample.task == 'instance_segmentation'
    assert sample.dataset_name == 'shapes'
    gt = sample.gt_instances
    assert len(gt) >= 1 and gt.masks.masks.shape[1:] == (96, 96)
    assert gt.bboxes.shape == (len(gt), 4)
    assert int(gt.labels.max()) < len(SHAPES)


def test_image_without_objects_is_valid(shapes_root, coco_val, tmp_path):
    img_id = coco_val['images'][0]['id']
    coco_val['annotations'] = [
        a for a in coco_val['annotations'] if a['image_id'] != img_id
    ]
    ds = _build(shapes_root, _write(tmp_path, coco_val))
    first = ds[0]['data_samples']
    assert first.img_id == img_id and len(first.gt_instances) == 0


@pytest.mark.parametrize('field,value,match', [
    ('category_id', 99, 'category_id 99 is not among'),
    ('bbox', [3, 3, 0, 5], 'degenerate box'),
    ('bbox', [3, 3, 5], 'degenerate box'),
    ('bbox', [500, 500, 5, 5], 'outside the image'),
])
def test_bad_annotation(shapes_root, coco_val, tmp_path, field, value, match):
    bad = copy.deepcopy(coco_val)
    ann = bad['annotations'][1]
    ann[field] = value
    path = _write(tmp_path, bad)
    with pytest.raises(AnnotationError, match=match) as info:
        _build(shapes_root, path)
    assert info.value.file == path
    assert f"annotation id {ann['id']}" in str(info.value)
    # 'warn' skips the bad annotation (one warning) and keeps the rest
    with pytest.warns(UserWarning, match=r'1 of \d+ annotations skipped'):
        ds = _build(shapes_root, path, bad_annotation='warn')
    total = sum(
        len(ds.get_data_info(i)['instances']) for i in range(len(ds)))
    assert total == len(coco_val['annotations']) - 1


def test_malformed_json(shapes_root, tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text('{"images": [')
    with pytest.raises(AnnotationError, match='malformed JSON') as info:
        _build(shapes_root, str(path))
    assert str(path) in str(info.value)


def test_unknown_class_in_config(shapes_root):
    with pytest.raises(AnnotationError, match=r"\['zebra'\]"):
        UPv2CocoDataset(
            data_root=shapes_root, ann_file='annotations/instances_val.json',
            data_prefix=dict(img='images/'),
            metainfo=dict(classes=('circle', 'zebra')))


def test_missing_and_unreadable_image(shapes_root, coco_val, tmp_path):
    coco_val['images'][0]['file_name'] = 'val/missing.png'
    ds = _build(shapes_root, _write(tmp_path, coco_val))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        ds[0]
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    coco_val['images'][0]['file_name'] = str(broken)
    ds = _build(shapes_root, _write(tmp_path, coco_val))
    with pytest.raises(Exception, match='broken.png'):
        ds[0]


def test_missing_paths_name_the_key(shapes_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root=.*nowhere'):
        _build(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='ann_file=.*absent.json'):
        _build(shapes_root, 'annotations/absent.json')


def test_dropped_annotations_are_counted_in_one_warning(
        shapes_root, coco_val, tmp_path):
    """An annotation of no image, a malformed polygon and a box thinner
    than a pixel: one warning for the file, with the counts by reason and
    an example record of each."""
    anns = coco_val['annotations']
    anns[0]['image_id'] = 9999
    anns[1]['segmentation'] = [[1, 2, 3, 4, 5]]  # odd: 2.5 points
    anns[2]['segmentation'] = [[1, 2, 3, 4]]  # two points
    anns[3]['bbox'] = [3, 3, 0.5, 5]
    path = _write(tmp_path, coco_val)
    with pytest.warns(UserWarning) as record:
        _build(shapes_root, path)
    messages = [str(w.message) for w in record if path in str(w.message)]
    assert len(messages) == 1
    message = messages[0]
    assert f"4 of {len(anns)} annotations skipped or ignored" in message
    assert '2 with a malformed polygon' in message
    assert f"annotation id {anns[1]['id']}" in message
    assert '1 with an image_id not among the images' in message
    assert f"annotation id {anns[0]['id']} (image id 9999)" in message
    assert '1 with a box thinner than one pixel' in message


def test_image_of_another_size_than_its_record(shapes_root, coco_val,
                                               tmp_path):
    """Instead of numpy's "cannot reshape array" from the masks: the
    error names the file, the image, both sizes and what to do."""
    small = tmp_path / 'small.png'
    mmcv.imwrite(np.zeros((50, 70, 3), np.uint8), str(small))
    coco_val['images'][0]['file_name'] = str(small)
    ds = _build(shapes_root, _write(tmp_path, coco_val))
    with pytest.raises(AnnotationError) as info:
        ds[0]
    message = str(info.value)
    assert f"image id {coco_val['images'][0]['id']}" in message
    assert 'small.png is 70x50' in message and 'record says 96x96' in message
    assert 'regenerate' in message
    # boxes only (no masks to trip over): still refused
    ds = UPv2CocoDataset(
        data_root=shapes_root, ann_file=_write(tmp_path, coco_val),
        data_prefix=dict(img='images/'), metainfo=dict(classes=SHAPES),
        pipeline=[PIPELINE[0], dict(type='mmdet.LoadAnnotations'),
                  PIPELINE[2]])
    with pytest.raises(AnnotationError, match='record says 96x96'):
        ds[0]
