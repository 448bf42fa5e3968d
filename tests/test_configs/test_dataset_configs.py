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
    ('cls_caption_retrieval', 'imagenet_train_dataloader', 'imagenet', 4,
     'classification', 224),
    ('cls_caption_retrieval_384', 'imagenet_val_dataloader', 'imagenet', 2,
     'classification', 384),
    ('coco_instance', 'coco_train_dataloader', 'coco', 4,
     'instance_segmentation', None),
    ('coco_instance', 'coco_val_dataloader', 'coco', 4,
     'instance_segmentation', None),
    ('cls_caption_retrieval', 'coco_caption_train_dataloader', 'coco', 6,
     'captioning', 224),
    ('cls_caption_retrieval_384', 'coco_caption_test_dataloader', 'coco', 2,
     'captioning', 384),
    ('cls_caption_retrieval', 'coco_retrieval_test_dataloader', 'coco', 2,
     'retrieval', 224),
    ('cls_caption_retrieval', 'flickr30k_test_dataloader', 'flickr30k', 4,
     'retrieval', 224),
    ('cls_caption_retrieval_384', 'flickr30k_test_dataloader', 'flickr30k',
     4, 'retrieval', 384),
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


@pytest.mark.parametrize('size', [224, 384])
def test_image_text_pairs_configs(data_root, size):
    file = 'cls_caption_retrieval' + ('_384' if size == 384 else '')
    cfg = Config.fromfile(osp.join(BASE, f'{file}.py'))
    for key, task, batch_size in (('caption', 'captioning', 24),
                                  ('retrieval', 'retrieval', 28)):
        loaders = cfg[f'pairs_{key}_dataloaders']
        assert set(loaders) == {'yfcc', 'cc12m', 'cc3m', 'vg', 'sbu'}
        for loader in loaders.values():
            assert loader.dataset.task == task
            assert loader.batch_size == batch_size
    for name, loader in cfg.pairs_retrieval_dataloaders.items():
        ds = _build(loader, data_root, name)
        packed = ds[1]
        assert packed['data_samples'].task == 'retrieval'
        assert packed['inputs'].shape == (3, size, size)


def test_384_changes_only_the_resizing():
    """cls_caption_retrieval_384.py: the loaders of the 224 file, names,
    batch sizes and data sets unchanged; only the pipelines' resizing steps
    differ."""
    cfg224 = Config.fromfile(osp.join(BASE, 'cls_caption_retrieval.py'))
    cfg384 = Config.fromfile(osp.join(BASE, 'cls_caption_retrieval_384.py'))
    assert set(cfg224) == set(cfg384) - {'_train', '_test'}
    loaders = [k for k in cfg224 if k.endswith(('dataloader', 'dataloaders'))]
    assert len(loaders) == 9
    for key in loaders:
        a, b = cfg224[key].to_dict(), cfg384[key].to_dict()
        pairs = [(a, b)] if key.endswith('dataloader') else [
            (a[n], b[n]) for n in a]
        for loader224, loader384 in pairs:
            pipe224 = loader224['dataset'].pop('pipeline')
            pipe384 = loader384['dataset'].pop('pipeline')
            assert loader224 == loader384, key
            sizes = str(pipe224).count('224'), str(pipe384).count('384')
            assert sizes[0] >= 1 and sizes[1] >= 1, key
            assert '384' not in str(pipe224) and '224' not in str(pipe384)


#: Training entries of the data set files: file -> {variable: the top-level
#: loader of each entry, as ``(loader key, source)``; source None: a single
#: loader}.
ENTRIES = {
    'cls_caption_retrieval': dict(
        classification_entries=dict(
            imagenet=('imagenet_train_dataloader', None)),
        yfcc_caption_entries=dict(
            yfcc_caption=('pairs_caption_dataloaders', 'yfcc')),
        captioning_entries=dict(
            cc12m_caption=('pairs_caption_dataloaders', 'cc12m'),
            cc3m_caption=('pairs_caption_dataloaders', 'cc3m'),
            vg_caption=('pairs_caption_dataloaders', 'vg'),
            coco_caption=('coco_caption_train_dataloader', None),
            sbu_caption=('pairs_caption_dataloaders', 'sbu')),
        yfcc_retrieval_entries=dict(
            yfcc_retrieval=('pairs_retrieval_dataloaders', 'yfcc')),
        retrieval_entries=dict(
            cc12m_retrieval=('pairs_retrieval_dataloaders', 'cc12m'),
            cc3m_retrieval=('pairs_retrieval_dataloaders', 'cc3m'),
            vg_retrieval=('pairs_retrieval_dataloaders', 'vg'),
            coco_retrieval=('coco_retrieval_train_dataloader', None),
            sbu_retrieval=('pairs_retrieval_dataloaders', 'sbu'))),
    'coco_instance': dict(
        detection_entries=dict(coco=('coco_det_train_dataloader', None)),
        instance_segmentation_entries=dict(
            coco=('coco_train_dataloader', None))),
    'books_wiki': dict(
        mlm_entries=dict(books_wiki=('books_wiki_train_dataloader', None))),
}
ENTRIES['cls_caption_retrieval_384'] = ENTRIES['cls_caption_retrieval']


@pytest.mark.parametrize('file', sorted(ENTRIES))
def test_training_entries_hold_the_file_loaders(file):
    """The MultiTaskLoop entries of a data set file: s_k and w_k, and the
    training loader of the same file (at 384 the 384 one)."""
    cfg = Config.fromfile(osp.join(BASE, f'{file}.py'))
    for var, entries in ENTRIES[file].items():
        assert list(cfg[var]) == list(entries), var
        for name, (key, source) in entries.items():
            entry = cfg[var][name]
            assert set(entry) == {'sampling_ratio', 'loss_weight',
                                  'dataloader'}, name
            assert 0 < entry.sampling_ratio < 1 and entry.loss_weight > 0
            loader = cfg[key] if source is None else cfg[key][source]
            assert entry.dataloader == loader, name


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
        _build(cfg.imagenet_val_dataloader, str(tmp_path), 'nowhere')
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
