# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch
from mmengine.structures import InstanceData

from mmupv2.structures import TASKS, UPv2DataSample


def test_task_in_metainfo():
    sample = UPv2DataSample().set_task('detection')
    assert sample.task == 'detection'
    assert 'task' in sample.metainfo_keys()
    assert 'task' not in sample.keys()  # meta, not data: survives batching
    with pytest.raises(ValueError, match='unknown task'):
        UPv2DataSample().set_task('segmentation')
    assert len(TASKS) == 6


def test_label_fields():
    sample = UPv2DataSample().set_gt_label(3).set_pred_score(
        torch.tensor([0.1, 0.7, 0.2]))
    assert sample.gt_label.tolist() == [3]
    assert sample.gt_label.dtype == torch.int64
    assert sample.pred_score.shape == (3, )
    sample.set_pred_label([1, 2])
    assert sample.pred_label.tolist() == [1, 2]
    with pytest.raises(ValueError, match='1-D'):
        sample.set_pred_score(torch.zeros(2, 3))


def test_text_fields():
    sample = UPv2DataSample().set_gt_caption('a red star')
    assert sample.gt_caption == ['a red star']
    sample.set_gt_caption(['a', 'b']).set_pred_caption('c').set_text('d')
    assert sample.gt_caption == ['a', 'b']
    assert sample.pred_caption == 'c' and sample.text == 'd'
    with pytest.raises(TypeError):
        sample.set_gt_caption([])


def test_instances_and_to_dict():
    sample = UPv2DataSample(metainfo=dict(img_id=1)).set_task('detection')
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[0., 0., 4., 4.]]), labels=torch.tensor([2]))
    sample.pred_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
        scores=torch.zeros(0))
    as_dict = sample.to_dict()  # what mmengine's Evaluator hands metrics
    assert as_dict['task'] == 'detection'
    assert as_dict['gt_instances']['labels'].tolist() == [2]
    assert 'pred_instances' in as_dict
    stacked = sample.clone()
    assert isinstance(stacked, UPv2DataSample) and stacked.task == 'detection'
