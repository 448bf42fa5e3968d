# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Default class names from a checkpoint's ``meta.dataset_meta``."""
import pytest

from mmupv2.apis import classes_from_dataset_meta


def test_multi_task_loop_layout():
    meta = dict(
        coco=dict(classes=('person', 'car'), task='detection'),
        in1k=dict(classes=['tench', 'goldfish'], task='classification'),
        caption=dict(task='captioning'))
    assert classes_from_dataset_meta(meta, 'detection') == ['person', 'car']
    assert classes_from_dataset_meta(meta, 'classification') == [
        'tench', 'goldfish'
    ]
    assert classes_from_dataset_meta(meta, 'instance_segmentation') is None


def test_several_label_spaces_warn_and_take_the_first():
    meta = dict(coco=dict(classes=('person', ), task='detection'),
                o365=dict(classes=('person', 'car'), task='detection'))
    with pytest.warns(UserWarning, match="'coco', 'o365'"):
        assert classes_from_dataset_meta(meta, 'detection') == ['person']


def test_single_data_set_layout():
    flat = dict(classes=('a', 'b'), palette=[(0, 0, 0), (1, 1, 1)])
    assert classes_from_dataset_meta(flat, 'detection') == ['a', 'b']
    assert classes_from_dataset_meta(flat, 'classification') == ['a', 'b']
    tagged = dict(classes=('a', ), task='classification')
    assert classes_from_dataset_meta(tagged, 'detection') is None
    # checkpoints of mmdet 2.x: upper-case CLASSES
    assert classes_from_dataset_meta(dict(CLASSES=('x', )), 'detection') == [
        'x'
    ]


@pytest.mark.parametrize('meta', [None, {}, dict(classes=()), 'coco'])
def test_nothing_to_read(meta):
    assert classes_from_dataset_meta(meta, 'detection') is None
