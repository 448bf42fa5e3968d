# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Every paper config trains: one iteration through mmengine's Runner on
tiny settings, and the proposal pre-training's checkpoint loads whole into
a ResNet-50 ablation.

Kept from each config: the training loop and its sampling (unmixed /
mixed, the entries with their s_k, w_k), the task heads and their options
(image tokens, feature gather, class names), the decoder's MoE setting,
the optimizer (MT-AdamW / AdamW, the lr multipliers), the schedulers.
Changed, to fit a CPU test: every entry reads the generated shapes data of
its task (batch 2, 64 x 64 images); the image encoder is the tiny one
(``configs/_base_/models/image_encoder_tiny.py``; the real encoders are
built by ``test_model_configs.py``); the decoder is 64 wide with one layer;
the text encoder a one-layer RoBERTa over the shapes tokenizer; the class
names the first 8 of each list and the config only the keys the Runner
reads (mmengine prints the whole config four times with yapf: ~6 s each
for a paper config on this CPU, most of the test's time otherwise); no
evaluation (the proposal pre-training evaluates once: it is one epoch).
"""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmupv2.datasets.shapes import generate_shapes
from tests.test_configs.paper_config_stubs import (
    SMALL_DECODER,
    dataset_task,
    save_tiny_roberta,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', 'uniperceiver_v2', '*.py'))
    if not osp.basename(p).endswith('_shapes.py'))
PROPOSER_CONFIG = osp.join(ROOT, 'configs', 'proposal_pretrain',
                           'upv2-proposer_r50_16xb1-12e_coco.py')
TINY_ENCODER = osp.join(ROOT, 'configs', '_base_', 'models',
                        'image_encoder_tiny.py')
#: the config keys mmengine's Runner reads (Runner.from_cfg)
RUNNER_KEYS = {
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'model_wrapper_cfg', 'vis_backends'
}
SHAPES_CLASSES = ('circle', 'square', 'triangle', 'diamond', 'star',
                  'cross', 'ring')


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    """Shapes data (8 train / 4 val images of 64 x 64) and a one-layer
    RoBERTa folder over its tokenizer."""
    root = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes(root, num_train=8, num_val=4, seed=5, img_size=64)
    folder = save_tiny_roberta(root, str(tmp_path_factory.mktemp('roberta')))
    return root + '/', folder


def _pipeline(with_boxes: bool = False) -> list:
    steps = [dict(type='LoadImageFromFile')]
    if with_boxes:
        steps.append(dict(type='mmdet.LoadAnnotations', with_bbox=True,
                          with_mask=True))
    steps += [dict(type='mmdet.Resize', scale=(64, 64), keep_ratio=True),
              dict(type='PackUPv2Inputs')]
    return steps


def shapes_dataset(task: str, root: str, name: str, split: str = 'train'):
    """The shapes data set of ``task`` (the formats of the paper's data:
    an ImageNet-style list, COCO instances, a Karpathy split, text
    lines)."""
    karpathy = dict(data_root=root,
                    ann_file='annotations/karpathy_shapes.json', split=split,
                    data_prefix=dict(img_path='images/'), dataset_name=name,
                    pipeline=_pipeline())
    if task == 'classification':
        return dict(type='UPv2ClassificationDataset', data_root=root,
                    ann_file=f'classification/{split}.txt',
                    data_prefix='images/', classes=SHAPES_CLASSES,
                    dataset_name=name, pipeline=_pipeline())
    if task in ('detection', 'instance_segmentation'):
        return dict(type='UPv2CocoDataset', data_root=root, task=task,
                    ann_file=f'annotations/instances_{split}.json',
                    data_prefix=dict(img='images/'),
                    metainfo=dict(classes=SHAPES_CLASSES),
                    filter_cfg=dict(filter_empty_gt=split == 'train'),
                    test_mode=split != 'train', dataset_name=name,
                    pipeline=_pipeline(with_boxes=True))
    if task == 'captioning':
        return dict(karpathy, type='KarpathyCaptionDataset')
    if task == 'retrieval':
        return dict(karpathy, type='KarpathyRetrievalDataset')
    assert task == 'mlm', task
    return dict(type='TextLinesDataset', data_root=root,
                ann_file='text/train.txt', dataset_name=name,
                pipeline=[dict(type='PackUPv2Inputs')])


def _tiny_settings(cfg: Config, work_dir: str, root: str, hf_folder: str):
    """The changes of the module docstring, in place."""
    encoder = Config.fromfile(TINY_ENCODER).image_encoder
    encoder.backbone.init_cfg = None
    cfg.model.image_encoder = encoder
    cfg.model.decoder.update(SMALL_DECODER,
                             image_in_dims=encoder.proposal_network.embed_dims)
    cfg.model.text_encoder.update(name_or_path=hf_folder, max_length=32)
    for head in cfg.model.tasks.values():
        if head.get('classes'):
            head.classes = head.classes[:8]
    for key in [k for k in cfg if k not in RUNNER_KEYS]:
        cfg.pop(key)  # helper variables of the files (entries, pipelines)
    for name, entry in cfg.train_dataloader.items():
        loader = entry.dataloader
        loader.dataset = shapes_dataset(dataset_task(loader.dataset), root,
                                        name)
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    for key in ('val', 'test'):
        cfg[f'{key}_dataloader'] = cfg[f'{key}_evaluator'] = None
        cfg[f'{key}_cfg'] = None
    cfg.train_cfg.update(max_iters=1, val_interval=10**9)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'


def _train(cfg: Config) -> Runner:
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _stepped(runner: Runner) -> int:
    """Parameters the optimizer has state for (stepped at least once)."""
    optimizer = runner.optim_wrapper.optimizer
    return sum(1 for state in optimizer.state.values() if state)


@pytest.mark.parametrize('path', PAPER_CONFIGS, ids=_name)
def test_config_trains_one_iteration(path, tiny_data, tmp_path):
    root, hf_folder = tiny_data
    cfg = Config.fromfile(path)
    tasks = set(cfg.model.tasks)
    _tiny_settings(cfg, str(tmp_path), root, hf_folder)
    cfg.model.image_encoder.pretrained = None  # see the test below
    runner = _train(cfg)

    assert runner.iter == 1
    assert set(runner.model.tasks) == tasks
    assert type(runner.optim_wrapper.optimizer).__name__ == (
        cfg.optim_wrapper.optimizer.type)
    losses = {k: v.current() for k, v in runner.message_hub.log_scalars.items()
              if k.startswith('train/loss')}
    assert losses and all(np.isfinite(v) for v in losses.values()), losses
    # (a retrieval share of one pair has InfoNCE 0: one candidate)
    assert any(v > 0 for v in losses.values()), losses
    assert _stepped(runner) > 0


def test_proposal_pretraining_feeds_the_ablations(tiny_data, tmp_path):
    """The proposal pre-training config trains (one epoch of one iteration)
    and evaluates class-agnostic AP; its checkpoint is what the base R50
    config's image encoder loads whole (backbone + neck + proposal
    network) when the Runner initialises the model."""
    root, hf_folder = tiny_data
    cfg = Config.fromfile(PROPOSER_CONFIG)
    assert cfg.model.type == 'ClassAgnosticProposer'
    encoder = Config.fromfile(TINY_ENCODER).image_encoder
    encoder.backbone.init_cfg = None
    cfg.model.image_encoder = encoder
    train = shapes_dataset('instance_segmentation', root, 'coco')
    cfg.train_dataloader.update(
        dataset=dict(train, indices=2), batch_size=2, num_workers=0,
        persistent_workers=False)
    val = shapes_dataset('instance_segmentation', root, 'coco', 'val')
    cfg.val_dataloader.update(dataset=val, num_workers=0,
                              persistent_workers=False)
    cfg.val_evaluator.ann_file = root + 'annotations/instances_val.json'
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path / 'proposer')
    cfg.log_level = 'WARNING'
    proposer = _train(cfg)
    assert (proposer.epoch, proposer.iter) == (1, 1)
    scalars = proposer.message_hub.log_scalars
    for key in ('val/proposal/bbox_mAP', 'val/proposal/segm_mAP'):
        assert 0 <= scalars[key].current() <= 1, key
    checkpoint = osp.join(cfg.work_dir, 'epoch_1.pth')
    assert osp.isfile(checkpoint)

    ablation = Config.fromfile(PAPER_CONFIGS[0].replace(
        osp.basename(PAPER_CONFIGS[0]), 'upv2_r50_16xb-mt-150k_4tasks.py'))
    _tiny_settings(ablation, str(tmp_path / 'ablation'), root, hf_folder)
    ablation.model.image_encoder.pretrained = checkpoint
    ablation.train_cfg.max_iters = 0  # initialise only
    runner = Runner.from_cfg(ablation)
    runner._init_model_weights()  # what runner.train() does first
    trained = proposer.model.image_encoder.state_dict()
    loaded = runner.model.image_encoder.state_dict()
    for part in ('backbone', 'neck', 'proposal_network'):
        keys = [k for k in trained if k.startswith(part + '.')]
        assert keys, part
        for key in keys:
            assert torch.equal(loaded[key], trained[key]), key
