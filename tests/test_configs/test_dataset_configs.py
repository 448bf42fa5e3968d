# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Every data set config of configs/_base_/datasets builds on files in the
real layout and yields packed samples through its real pipeline."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmupv2.registry import DATASETS, METRICS

from .real_format_fixtures import write_real_layouts

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(ROOT, 'configs', '_base_', 'datasets')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data'))
    write_real_layouts(root)
    init_default_scope('mmupv2')
    return root


def _build(loader_cfg, root, name):
    cfg = loader_cfg.dataset.copy()
    cfg.data_root = osp.join(root, name)
    return DATASETS.build(cfg)


CASES = [
    ('cls_caption_retrieval', 'imagenet_train_dataloader_224', 'imagenet', 4,
     'classification', 224),
    ('cls_caption_retrieval', 'imagenet_val_dataloader_384', 'imagenet', 2,
     'classification', 384),
    ('coco_instance', 'coco_train_dataloader', 'coco', 4,
     'instance_segmentation', None),
    ('coco_instance', 'coco_val_dataloader', 'coco', 4,
     'instance_segmentation', None),
    ('cls_caption_retrieval', 'coco_caption_train_dataloader_224', 'coco',
     6, 'captioning', 224),
    ('cls_caption_retrieval', 'coco_caption_test_dataloader_384', 'coco', 2,
     'captioning', 384),
    ('cls_caption_retrieval', 'coco_retrieval_test_dataloader_224', 'coco',
     2, 'retrieval', 224),
    ('cls_caption_retrieval', 'flickr30k_test_dataloader_224', 'flickr30k', 4,
     'retrieval', 224),
    ('books_wiki', 'books_wiki_train_dataloader', 'books_wiki', None, 'mlm',
     None),
]


@pytest.mark.parametrize('file,key,folder,length,task,size', CASES)
def test_dataset_config(data_root, file, key, folder, length, task, size):
    cfg = Config.fromfile(osp.join(BASE, f'{file}.py'))
    ds = _build(cfg[key], data_root, folder)
    if length is not None:
        assert len(ds) == length
    packed = ds[0]
    sample = packed['data_samples']
    assert sample.task == task
    if size is not None:
        assert packed['inputs'].shape == (3, size, size)
    if task == 'instance_segmentation':
        h, w = packed['inputs'].shape[1:]
        assert max(h, w) <= 2400 and len(sample.gt_instances) >= 0
        if 'val' in key:
            assert min(h, w) <= 1400 and max(h, w) <= 1600
        else:
            assert max(h, w) <= 1600  # cropped
    if task == 'mlm':
        assert 'inputs' not in packed and sample.text


def test_image_text_pairs_configs(data_root):
    cfg = Config.fromfile(osp.join(BASE, 'cls_caption_retrieval.py'))
    assert set(cfg.pairs_caption_dataloaders_224) == {
        'yfcc', 'cc12m', 'cc3m', 'vg', 'sbu'}
    for name, loader in cfg.pairs_retrieval_dataloaders_384.items():
        ds = _build(loader, data_root, name)
        packed = ds[1]
        assert packed['data_samples'].task == 'retrieval'
        assert packed['inputs'].shape == (3, 384, 384)


def test_evaluators_build():
    init_default_scope('mmupv2')
    for file, key in (('cls_caption_retrieval', 'imagenet_val_evaluator'),
                      ('cls_caption_retrieval', 'coco_caption_evaluator'),
                      ('cls_caption_retrieval', 'coco_retrieval_evaluator'),
                      ('cls_caption_retrieval', 'flickr30k_evaluator')):
        cfg = Config.fromfile(osp.join(BASE, f'{file}.py'))
        metric = METRICS.build(cfg[key])
        assert metric.prefix in ('classification', 'captioning', 'retrieval')


def test_missing_data_root_names_the_key(tmp_path):
    cfg = Config.fromfile(osp.join(BASE, 'cls_caption_retrieval.py'))
    init_default_scope('mmupv2')
    with pytest.raises(FileNotFoundError, match="data_root='.*nowhere'"):
        _build(cfg.imagenet_val_dataloader_224, str(tmp_path), 'nowhere')
    assert torch.__version__  # the suite's torch is importable


def test_shapes_config(shapes_root):
    init_default_scope('mmupv2')
    cfg = Config.fromfile(osp.join(BASE, 'shapes.py'))
    loaders = dict(cfg.shapes_train_dataloaders)
    loaders.update({f'val_{k}': v
                    for k, v in cfg.shapes_val_dataloaders.items()})
    tasks = set()
    for name, loader in loaders.items():
        ds_cfg = loader.dataset.copy()
        ds_cfg.data_root = shapes_root
        if 'classes' in ds_cfg:
            ds_cfg.classes = osp.join(shapes_root, 'classification',
                                      'classes.txt')
        ds = DATASETS.build(ds_cfg)
        packed = ds[0]
        tasks.add(packed['data_samples'].task)
        if ds.task != 'mlm':
            assert packed['inputs'].shape == (3, 96, 96), name
    assert tasks == {'classification', 'detection', 'instance_segmentation',
                     'captioning', 'retrieval', 'mlm'}
    assert set(cfg.shapes_val_evaluators) == set(cfg.shapes_val_dataloaders)
    for metric in cfg.shapes_val_evaluators.values():
        metric = dict(metric)
        if 'ann_file' in metric:
            metric['ann_file'] = osp.join(shapes_root, 'annotations',
                                          'instances_val.json')
        assert METRICS.build(metric).prefix == metric['prefix']
