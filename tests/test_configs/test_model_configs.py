# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Every paper config of configs/uniperceiver_v2 parses, follows the paper
(Table 8's batch sizes, s_k and w_k; the schedule; the optimizer) and its
model builds, with RoBERTa swapped for a tiny local Hugging Face folder and
a narrow decoder (the image encoder and the task heads are the file's).
The tiny shapes config is tested with the demo."""
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

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', 'uniperceiver_v2', '*.py'))
    if osp.basename(p) != 'upv2_tiny_shapes.py')

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
#: Sec. 5.3: the ablations train neither MLM nor on YFCC.
ABLATION_ENTRIES = {
    k
    for k in TABLE8 if k != 'books_wiki' and not k.startswith('yfcc')
}
COCO_CLASSES = DATASETS.get('UPv2CocoDataset').METAINFO['classes']
NUM_IMAGENET = len(DATASETS.get('UPv2ImageNetDataset').METAINFO['classes'])
#: a narrow decoder keeps the builds fast; its MoE setting stays the file's
SMALL_DECODER = dict(
    embed_dims=64, num_layers=1, num_heads=2, feedforward_channels=128)


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _is_swin(path: str) -> bool:
    return '_swin-' in _name(path)


def _dataset_task(dataset: dict) -> str:
    return dataset.get('task') or DATASETS.get(dataset['type']).default_task


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
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel
    shapes = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes(shapes, num_train=8, num_val=2, img_size=64)
    tok = AutoTokenizer.from_pretrained(
        osp.join(shapes, 'tokenizer'), local_files_only=True)
    folder = str(tmp_path_factory.mktemp('tiny_roberta'))
    RobertaModel(
        RobertaConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=160, pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


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
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'image_encoder.backbone': dict(lr_mult=0.1),
        'text_encoder': dict(lr_mult=0.1)
    }

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
        assert _dataset_task(loader.dataset) in tasks, name
        size = 384 if swin else 224
        if name not in ('coco', 'books_wiki'):
            assert _crop_sizes(loader.dataset.pipeline) == {size}, name
    trained = {_dataset_task(e.dataloader.dataset) for e in entries.values()}
    assert trained == tasks  # every head is trained, and only those
    if not swin:  # the ablations keep every entry of the tasks they train
        assert set(entries) == {
            n
            for n in ABLATION_ENTRIES if cfg.entry_tasks[n] in tasks
        }
    coco_task = 'instance_segmentation' if swin else 'detection'
    if 'coco' in entries:
        assert _dataset_task(entries.coco.dataloader.dataset) == coco_task

    # evaluation: one evaluator per data set, on the tasks of the model
    assert cfg.val_cfg.type == 'MultiTaskValLoop'
    assert cfg.test_cfg.type == 'MultiTaskTestLoop'
    assert set(cfg.val_dataloader) == set(cfg.val_evaluator)
    assert cfg.test_dataloader == cfg.val_dataloader
    assert cfg.test_evaluator == cfg.val_evaluator
    val_tasks = {
        n: _dataset_task(loader.dataset)
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
            if cfg.entry_tasks[n] in tasks
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
    assert type(backbone).__name__ == ('SwinTransformer'
                                       if swin else 'ResNet')
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
        expected = 1e-5 if part in ('image_encoder.backbone',
                                    'text_encoder') else 1e-4
        assert lr[id(param)] == pytest.approx(expected), name
        seen.add(part)
    assert seen == {
        'image_encoder.backbone', 'text_encoder', 'image_encoder',
        'decoder', 'tasks'
    }
