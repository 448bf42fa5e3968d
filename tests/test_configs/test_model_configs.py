# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Every paper config of configs/uniperceiver_v2 parses, follows the paper
(Table 8's batch sizes, s_k and w_k; the schedule; the optimizer) and its
model builds, with RoBERTa swapped for a tiny local Hugging Face folder and
a narrow decoder (the image encoder and the task heads are the file's).
The shapes configs (the demo's and the from-scratch tiny one) are tested
with the demo, the custom data set test and the overfit proofs."""
import glob
import json
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.datasets.categories import IMAGENET_SIMPLE_CATEGORIES

from mmupv2.datasets.shapes import generate_shapes
from mmupv2.models import UniPerceiverV2
from mmupv2.registry import DATASETS, MODELS
from tests.test_configs.paper_config_stubs import (
    SMALL_DECODER,
    dataset_task,
    save_tiny_roberta,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the ablation of the other reading of Sec. 4.4's lr multiplier
WHOLE_IMAGE_ENCODER_AT_0_1 = '_image-encoder-lr0.1'
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', 'uniperceiver_v2', '*.py'))
    if not osp.basename(p).endswith('_shapes.py'))

#: Paper Table 8: entry -> (batch size per GPU, s_k, w_k).
TABLE8 = {
    'imagenet': (28, 0.1, 1.0),
    'coco': (1, 0.25, 1.0),
    'books_wiki': (256, 0.05, 0.5),
    'yfcc_caption': (24, 0.09831, 0.16385),
    'cc12m_caption': (24, 0.08514, 0.1419),
    'cc3m_caption': (24, 0.04428, 0.0738),
    'vg_caption': (24, 0.02973, 0.04955),
    'coco_caption': (24, 0.0192, 0.032),
    'sbu_caption': (24, 0.02328, 0.0388),
    'yfcc_retrieval': (28, 0.09831, 0.3277),
    'cc12m_retrieval': (28, 0.08514, 0.2838),
    'cc3m_retrieval': (28, 0.04428, 0.1476),
    'vg_retrieval': (28, 0.02973, 0.0991),
    'coco_retrieval': (28, 0.0192, 0.064),
    'sbu_retrieval': (28, 0.02328, 0.0776),
}
#: Paper Table 5 (pre-trained image encoders): config name suffix ->
#: (backbone type, its ``init_cfg`` checkpoint, ``prefix``, image mean).
#: The base config (IN-1k & COCO as the paper ran it) loads the whole image
#: encoder from the proposal pre-training instead (``PROPOSER``).
_IMAGENET_MEAN = [123.675, 116.28, 103.53]
_CLIP_MEAN = [255 * m for m in (0.48145466, 0.4578275, 0.40821073)]
_MMDET = 'https://download.openmmlab.com/mmdetection/'
PROPOSER = 'work_dirs/upv2-proposer_r50_16xb1-12e_coco/epoch_12.pth'
PROPOSER_CONFIG = osp.join(ROOT, 'configs', 'proposal_pretrain',
                           'upv2-proposer_r50_16xb1-12e_coco.py')
TABLE5 = {
    '_in1k-pretrained': ('ResNet', 'torchvision://resnet50', None,
                         _IMAGENET_MEAN),
    '_in21k-pretrained': ('ResNet', 'checkpoints/resnet50_in21k.pth',
                          'backbone.', _IMAGENET_MEAN),
    # IN-1k & COCO: the base config (the whole encoder from PROPOSER) and,
    # from public weights, the backbone of mmdet's Mask R-CNN
    '': ('ResNet', None, None, _IMAGENET_MEAN),
    '_in1k-coco-pretrained': (
        'ResNet', _MMDET + 'v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/'
        'mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth', 'backbone.',
        _IMAGENET_MEAN),
    '_mocov2-pretrained': (
        'ResNet', 'https://download.openmmlab.com/mmselfsup/1.x/mocov2/'
        'mocov2_resnet50_8xb32-coslr-200e_in1k/'
        'mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-b6d23c86.pth',
        'backbone.', _IMAGENET_MEAN),
    '_clip-pretrained': ('CLIPModifiedResNet',
                         'checkpoints/clip_rn50_backbone.pth', None,
                         _CLIP_MEAN),
}
#: Sec. 5.3: the ablations train neither MLM nor on YFCC.
ABLATION_ENTRIES = {
    k
    for k in TABLE8 if k != 'books_wiki' and not k.startswith('yfcc')
}
COCO_CLASSES = DATASETS.get('UPv2CocoDataset').METAINFO['classes']
NUM_IMAGENET = len(DATASETS.get('UPv2ImageNetDataset').METAINFO['classes'])


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _is_swin(path: str) -> bool:
    return '_swin-' in _name(path)


def _crop_sizes(pipeline) -> set:
    """Square sizes of the crops / resizes of a pipeline."""
    sizes = set()
    for step in pipeline:
        scale = step.get('scale', step.get('crop_size'))
        if step['type'].split('.')[-1] in ('RandomResizedCrop', 'Resize',
                                           'CenterCrop'):
            sizes.add(scale if isinstance(scale, int) else tuple(scale)[0])
    return sizes


@pytest.fixture(scope='module')
def hf_folder(tmp_path_factory) -> str:
    """RoBERTa's stand-in: a Hugging Face folder with a 1-layer RobertaModel
    (positions for the configs' 128 tokens) and the shapes tokenizer."""
    shapes = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes(shapes, num_train=8, num_val=2, img_size=64)
    return save_tiny_roberta(shapes,
                             str(tmp_path_factory.mktemp('tiny_roberta')))


@pytest.fixture(scope='module')
def built_models():
    """Models by architecture, the two most recent kept: configs that differ
    only in data, schedule, optimizer or pre-trained checkpoint share one."""
    cache = OrderedDict()
    yield cache
    cache.clear()


def _build(cfg_model: dict, cache: OrderedDict) -> UniPerceiverV2:
    arch = json.loads(json.dumps(cfg_model, default=str))
    arch['image_encoder']['backbone'].pop('init_cfg', None)
    key = json.dumps(arch, sort_keys=True)
    if key not in cache:
        init_default_scope('mmupv2')
        torch.manual_seed(0)
        cache[key] = MODELS.build(cfg_model)
        while len(cache) > 2:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_follows_the_paper(path):
    cfg = Config.fromfile(path)
    swin = _is_swin(path)
    assert cfg.default_scope == 'mmupv2' and cfg.model.type == (
        'UniPerceiverV2')
    assert cfg.model_wrapper_cfg.find_unused_parameters
    assert cfg.log_processor.type == 'MultiTaskLogProcessor'

    # schedule (Sec. 5.2): 200k / 150k iterations, lr x0.1 at 80 %
    iters = 200000 if swin else 150000
    assert cfg.train_cfg.type == 'MultiTaskLoop'
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_cfg.sampling == (
        'mixed' if 'mixed' in _name(path) else 'unmixed')
    (step, ) = cfg.param_scheduler
    assert step.type == 'MultiStepLR' and step.gamma == 0.1
    assert step.milestones == [160000 if swin else 120000]
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == ('AdamW'
                              if 'adamw' in _name(path) else 'MTAdamW')
    assert optimizer.lr == 1e-4 and optimizer.weight_decay == 1e-4
    # Sec. 4.4: the pre-trained encoders at 0.1x (the ablation: the whole
    # image encoder)
    expected_keys = {
        'image_encoder.backbone': dict(lr_mult=0.1),
        'text_encoder': dict(lr_mult=0.1)
    }
    if _name(path).endswith(WHOLE_IMAGE_ENCODER_AT_0_1):
        expected_keys['image_encoder'] = dict(lr_mult=0.1)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == expected_keys

    # training entries: Table 8, per data set
    tasks = set(cfg.model.tasks)
    entries = cfg.train_dataloader
    if swin:
        assert set(entries) == set(TABLE8)
    else:
        assert set(entries) <= ABLATION_ENTRIES
    for name, entry in entries.items():
        loader = entry.dataloader
        assert (loader.batch_size, entry.sampling_ratio,
                entry.loss_weight) == TABLE8[name], name
        assert dataset_task(loader.dataset) in tasks, name
        size = 384 if swin else 224
        if name not in ('coco', 'books_wiki'):
            assert _crop_sizes(loader.dataset.pipeline) == {size}, name
    trained = {dataset_task(e.dataloader.dataset) for e in entries.values()}
    assert trained == tasks  # every head is trained, and only those
    # the task of every ablation entry: the base config's entries by task
    entry_tasks = {} if swin else {
        name: task
        for task in ('classification', 'detection', 'captioning', 'retrieval')
        for name in cfg[f'{task}_entries']
    }
    if not swin:  # the ablations keep every entry of the tasks they train
        assert set(entry_tasks) == ABLATION_ENTRIES
        assert set(entries) == {
            n
            for n in ABLATION_ENTRIES if entry_tasks[n] in tasks
        }
    coco_task = 'instance_segmentation' if swin else 'detection'
    if 'coco' in entries:
        assert dataset_task(entries.coco.dataloader.dataset) == coco_task

    # evaluation: one evaluator per data set, on the tasks of the model
    assert cfg.val_cfg.type == 'MultiTaskValLoop'
    assert cfg.test_cfg.type == 'MultiTaskTestLoop'
    assert set(cfg.val_dataloader) == set(cfg.val_evaluator)
    assert cfg.test_dataloader == cfg.val_dataloader
    assert cfg.test_evaluator == cfg.val_evaluator
    val_tasks = {
        n: dataset_task(loader.dataset)
        for n, loader in cfg.val_dataloader.items()
    }
    assert set(val_tasks.values()) == tasks - {'mlm'}  # MLM: training only
    if swin:
        assert set(val_tasks) == {
            'imagenet', 'coco', 'coco_caption', 'coco_retrieval', 'flickr30k'
        }
        assert set(cfg.val_evaluator.coco.metric) == {'bbox', 'segm'}
    else:
        assert set(val_tasks) == {
            n
            for n in ('imagenet', 'coco', 'coco_caption', 'coco_retrieval')
            if entry_tasks[n] in tasks
        }
        if 'coco' in val_tasks:
            assert cfg.val_evaluator.coco.metric == 'bbox'


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_model_builds(path, hf_folder, built_models):
    cfg = Config.fromfile(path)
    cfg.model.text_encoder.name_or_path = hf_folder
    cfg.model.decoder.update(SMALL_DECODER)
    model = _build(cfg.model.to_dict(), built_models)

    assert isinstance(model, UniPerceiverV2)
    assert set(model.tasks) == set(cfg.model.tasks)
    if 'classification' in model.tasks:
        classes = [c[0] for c in model.tasks['classification'].classes]
        assert classes == list(IMAGENET_SIMPLE_CATEGORIES)
        # the data set's names (saved in checkpoints' dataset_meta) are the
        # head's, so the inferencer restores the trained label space
        assert classes == list(
            DATASETS.get('UPv2ImageNetDataset').METAINFO['classes'])
        assert len(classes) == NUM_IMAGENET
    for task in ('detection', 'instance_segmentation'):
        if task in model.tasks:
            assert [c[0] for c in model.tasks[task].classes
                    ] == list(COCO_CLASSES)
    for name, head_cfg in cfg.model.tasks.items():
        head = model.tasks[name]
        if 'image_tokens' in head_cfg:
            assert head.image_tokens == head_cfg.image_tokens
        if name == 'retrieval':
            assert head.gather == head_cfg.gather
    assert model.decoder.with_moe == (cfg.model.decoder.moe_cfg is not None)
    backbone = model.image_encoder.backbone
    swin = _is_swin(path)
    row = TABLE5.get(_name(path).split('4tasks')[-1])
    assert type(backbone).__name__ == ('SwinTransformer' if swin else
                                       row[0] if row else 'ResNet')
    if swin:
        arch = 'large' if '_swin-l_' in _name(path) else 'base'
        assert backbone.embed_dims == {'base': 128, 'large': 192}[arch]
    assert model.image_encoder.proposal_network.num_queries == (
        900 if swin else 300)
    assert cfg.model.text_encoder.load_pretrained
    assert model.text_encoder.model.config.num_hidden_layers == 1

    # lr_mult 0.1 on the pre-trained encoders only
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr = {
        id(p): group['lr']
        for group in optim_wrapper.optimizer.param_groups
        for p in group['params']
    }
    assert type(optim_wrapper.optimizer).__name__ == (
        cfg.optim_wrapper.optimizer.type)
    seen = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = next((p for p in ('image_encoder.backbone', 'text_encoder',
                                 'image_encoder', 'decoder', 'tasks')
                     if name.startswith(p)), None)
        assert part is not None, name
        slow = {'image_encoder.backbone', 'text_encoder'}
        if _name(path).endswith(WHOLE_IMAGE_ENCODER_AT_0_1):
            slow.add('image_encoder')
        expected = 1e-5 if part in slow else 1e-4
        assert lr[id(param)] == pytest.approx(expected), name
        seen.add(part)
    assert seen == {
        'image_encoder.backbone', 'text_encoder', 'image_encoder',
        'decoder', 'tasks'
    }


@pytest.mark.parametrize('suffix', sorted(TABLE5), ids=lambda s: s or 'base')
def test_table5_pretrained_encoders(suffix):
    """Every row of Table 5 has a config that changes only the backbone's
    weights (and, for CLIP, its architecture and the image mean / std), with
    the frozen-stage policy of the R50 configs; the base config loads the
    whole image encoder of the proposal pre-training instead, whose work
    directory and last epoch the path names."""
    base_path = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                         'upv2_r50_16xb-mt-150k_4tasks.py')
    path = base_path.replace('4tasks.py', f'4tasks{suffix}.py')
    assert path in CONFIGS
    backbone_type, checkpoint, prefix, mean = TABLE5[suffix]
    cfg = Config.fromfile(path)
    backbone = cfg.model.image_encoder.backbone
    assert backbone.type.split('.')[-1] == backbone_type
    if suffix:
        assert cfg.model.image_encoder.pretrained is None
        assert backbone.init_cfg.type == 'Pretrained'
        assert backbone.init_cfg.checkpoint == checkpoint
        assert backbone.init_cfg.get('prefix') == prefix
    else:
        assert cfg.model.image_encoder.pretrained == PROPOSER
        assert backbone.init_cfg is None  # nothing loaded before it
        proposer = Config.fromfile(PROPOSER_CONFIG)
        assert PROPOSER == osp.join(
            'work_dirs', osp.splitext(osp.basename(PROPOSER_CONFIG))[0],
            f'epoch_{proposer.train_cfg.max_epochs}.pth')
        # the same image encoder, trained from ImageNet-1k weights
        assert proposer.model.image_encoder.backbone == dict(
            backbone, init_cfg=dict(type='Pretrained',
                                    checkpoint='torchvision://resnet50'))
        for part in ('neck', 'proposal_network', 'criterion'):
            assert proposer.model.image_encoder[part] == (
                cfg.model.image_encoder[part])
    assert (backbone.frozen_stages, backbone.norm_eval) == (1, True)
    assert backbone.norm_cfg == dict(type='BN', requires_grad=False)
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert cfg.model.data_preprocessor.mean == pytest.approx(mean)
    if suffix == '_clip-pretrained':
        assert cfg.model.data_preprocessor.std == pytest.approx(
            [255 * s for s in (0.26862954, 0.26130258, 0.27577711)])
        assert (tuple(backbone.layers), backbone.width) == ((3, 4, 6, 3), 64)

    # nothing else differs from the base config
    base = Config.fromfile(base_path).to_dict()
    this = cfg.to_dict()
    for c in (base, this):
        c['model']['image_encoder'].pop('backbone')
        c['model']['image_encoder'].pop('pretrained')
        c['model']['data_preprocessor'].pop('mean')
        c['model']['data_preprocessor'].pop('std')
    assert this == base
