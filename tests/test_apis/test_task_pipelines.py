# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Inference pipelines from a config's test / val data sets."""
import numpy as np
import pytest
from mmengine.config import ConfigDict

from mmupv2.apis import find_task_pipelines, resolve_task_pipelines
from mmupv2.apis.task_pipelines import (
    build_pipeline,
    inference_pipeline_cfg,
    text_pipeline_cfg,
)
from mmupv2.structures import UPv2DataSample

LOAD = dict(type='LoadImageFromFile')
PACK = dict(type='PackUPv2Inputs')
DET = [
    LOAD,
    dict(type='mmdet.Resize', scale=(32, 24), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    PACK
]


def _loader(dataset):
    return dict(batch_size=1, dataset=dataset)


def test_find_per_task_and_single_loaders():
    cfg = ConfigDict(
        test_dataloader=dict(
            # the task from the data set's ``task`` key
            det=_loader(dict(type='UPv2CocoDataset', task='detection',
                             pipeline=DET)),
            # ... from the class's default_task
            cls=_loader(dict(type='UPv2ClassificationDataset',
                             pipeline=[LOAD, PACK])),
            # ... from the entry name; a wrapped data set is opened
            captioning=_loader(dict(type='RepeatDataset', times=2,
                                    dataset=dict(type='Foo',
                                                 pipeline=[LOAD, PACK])))),
        val_dataloader=_loader(
            dict(type='KarpathyRetrievalDataset', pipeline=[LOAD, PACK])))
    found = find_task_pipelines(cfg)
    assert sorted(found) == [
        'captioning', 'classification', 'detection', 'retrieval'
    ]
    assert found['detection'][1]['type'] == 'mmdet.Resize'


def test_resolve_overrides_siblings_and_fallback():
    cfg = ConfigDict(test_dataloader=_loader(
        dict(type='UPv2CocoDataset', task='detection', pipeline=DET)))
    with pytest.warns(UserWarning, match='no classification pipeline'):
        resolved = resolve_task_pipelines(
            cfg, ['detection', 'instance_segmentation', 'classification',
                  'captioning', 'mlm'],
            overrides=dict(retrieval=[LOAD, dict(type='mmdet.Resize', scale=8),
                                      PACK]))
    assert resolved['instance_segmentation'] == DET
    assert resolved['captioning'][1]['scale'] == 8  # retrieval's
    assert resolved['classification'] == [LOAD, PACK]
    assert 'mlm' not in resolved
    with pytest.raises(KeyError, match="unknown task 'vqa'"):
        resolve_task_pipelines(cfg, ['detection'], dict(vqa=[LOAD]))


def test_inference_pipeline_loads_arrays_and_paths(tmp_path):
    cfg = inference_pipeline_cfg(DET, 'detection')
    assert [t['type'] for t in cfg] == [
        'mmdet.InferencerLoader', 'mmdet.Resize', 'PackUPv2Inputs'
    ]
    pipeline = build_pipeline(cfg)
    img = np.zeros((48, 64, 3), np.uint8)
    packed = pipeline(dict(img=img, task='detection'))
    sample = packed['data_samples']
    assert isinstance(sample, UPv2DataSample)
    assert sample.task == 'detection' and sample.ori_shape == (48, 64)
    assert packed['inputs'].shape == (3, 24, 32)
    text = build_pipeline(text_pipeline_cfg(DET))(
        dict(text='a red circle', task='retrieval'))
    assert 'inputs' not in text and text['data_samples'].text == 'a red circle'
    with pytest.raises(ValueError, match='detection pipeline .* no Load'):
        inference_pipeline_cfg(DET[1:], 'detection')
