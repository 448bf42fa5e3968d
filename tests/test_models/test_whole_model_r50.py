# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The paper's ResNet-50 model as a whole, in the manner of mmdet's
``tests/test_models/test_detectors/test_dino.py``: built from the real
config (``configs/_base_/models/uniperceiver_v2_r50.py``, the model of every
``upv2_r50_16xb-mt-150k_4tasks*.py``) with random weights, then, for each of
its six tasks, a loss on a small batch (detection and instance segmentation
with empty ground truth and with one box), a backward, and a prediction,
all through ``model.data_preprocessor`` and ``model(..., mode=...)``.

Kept as the config says: the data preprocessor, the ResNet-50 backbone
(stage 1 frozen, frozen BN), the ChannelMapper neck, the binary Mask-DINO
proposal network (6 + 6 layers, 300 queries, denoising queries, the
criterion), the fusion into 200 regional and 10 global tokens, the 6-layer
768-wide MoE decoder (8 experts, top 2), every task head's settings
(captions: beam 2, 21 tokens).

Changed, and why:

- nothing is downloaded: the backbone's ``init_cfg`` (torchvision weights)
  is dropped, and ``f_text`` (roberta-base, not available offline) is a
  RoBERTa built from its config with random weights over the tokenizer of
  the generated shapes benchmark (a RoBERTa-style byte-level BPE of 378
  tokens). It has roberta-base's width (768, 12 heads, FFN 3072) but 2 of
  its 12 layers: a random stand-in either way, and its 12 layers cost about
  15 s more CPU time per run (captioning and MLM encode every vocabulary
  token as a target: forward, recomputed in the backward, backward);
- the class names are the first 8 of the config's ImageNet and COCO lists:
  all 1000 ImageNet names (10.7k tokens, 35k padded) through f_text and the
  decoder at every training step took minutes and ran out of 23 GB of
  memory on a CPU;
- the images are 128 x 128 (padded), not smaller: the proposal network
  picks its 300 queries among the encoder's tokens of the 4 scales, which
  need at least 300 (a 64 x 96 batch has 128).

About 50 s of CPU time on one thread (peak memory 4.5 GB); one model
serves every test, which reads the model only through
``model.data_preprocessor`` and ``model(inputs, data_samples, mode)``, and
the parameter names for the gradient checks.
"""
import os.path as osp

import pycocotools.mask as mask_util
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', '_base_', 'models',
                  'uniperceiver_v2_r50.py')
#: the config's model, for the expected sizes
PAPER = Config.fromfile(CONFIG).model
TASKS = ('classification', 'detection', 'instance_segmentation',
         'captioning', 'retrieval', 'mlm')
LOCALIZATION = ('detection', 'instance_segmentation')
NUM_CLASSES = 8
#: (img_shape, ori_shape): the images as resized by a pipeline (scale 0.5
#: and 1) and padded by the data preprocessor to 128 x 128
SHAPES = (((128, 112), (256, 224)), ((104, 128), (104, 128)))
BOX = [10., 12., 60., 90.]  # xyxy in img_shape pixels
TEXTS = ('a big green star', 'a small red circle on the left')
MASKED_TEXTS = ('a big <mask> star', 'a <mask> red <mask> on the left')
#: what a loss on an image reaches besides the task's own temperature
IMAGE_PARTS = frozenset({
    'image_encoder.backbone', 'image_encoder.neck',
    'image_encoder.proposal_network', 'image_encoder.fusion',
    'image_encoder.global_tokens', 'decoder.image_proj'
})
TEXT_PARTS = frozenset({
    'text_encoder', 'decoder.modality_embed', 'decoder.spe_token',
    'decoder.layers', 'decoder.norm'
})
#: the parts each task's loss must train: MLM is text only
TRAINED = {
    task: (TEXT_PARTS if task == 'mlm' else TEXT_PARTS | IMAGE_PARTS)
    | {f'tasks.{task}'}
    for task in TASKS
}


def _model_cfg(tokenizer: str) -> dict:
    """The config's model with the changes of the module docstring."""
    cfg = Config.fromfile(CONFIG)
    changes = dict(
        image_encoder=dict(backbone=dict(init_cfg=None)),
        text_encoder=dict(
            tokenizer=tokenizer,
            load_pretrained=False,
            hf_config=dict(model_type='roberta', num_hidden_layers=2)),
        tasks={
            task: dict(classes=cfg.model.tasks[task].classes[:NUM_CLASSES])
            for task in ('classification', ) + LOCALIZATION
        })
    cfg.merge_from_dict(dict(model=changes))
    return cfg.model.to_dict()


def _pretrained_entries(cfg) -> list:
    """Every ``init_cfg`` that would load weights, anywhere in ``cfg``."""
    if isinstance(cfg, dict):
        found = [cfg] if cfg.get('type') == 'Pretrained' else []
        return found + [e for v in cfg.values()
                        for e in _pretrained_entries(v)]
    if isinstance(cfg, (list, tuple)):
        return [e for v in cfg for e in _pretrained_entries(v)]
    return []


@pytest.fixture(scope='module')
def model(shapes_root):
    cfg = _model_cfg(osp.join(shapes_root, 'tokenizer'))
    assert not _pretrained_entries(cfg)
    assert set(cfg['tasks']) == set(TASKS)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmupv2'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(model, task: str, training: bool, num_boxes: int = 1) -> dict:
    """Two uint8 images of ``SHAPES`` (or none for MLM) and their samples,
    through the config's data preprocessor."""
    torch.manual_seed(1)
    images, samples = [], []
    for i, (img_shape, ori_shape) in enumerate(SHAPES):
        h, w = img_shape
        scale = img_shape[0] / ori_shape[0]
        sample = UPv2DataSample(
            metainfo=dict(img_shape=img_shape, ori_shape=ori_shape,
                          scale_factor=(scale, scale)))
        sample.set_task(task)
        if task == 'classification':
            sample.set_gt_label(i + 1)
        elif task in LOCALIZATION:
            masks = torch.zeros(num_boxes, h, w, dtype=torch.bool)
            masks[:, 12:90, 10:60] = True  # the box
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor([BOX] * num_boxes).reshape(-1, 4),
                labels=torch.full((num_boxes, ), 2),
                masks=masks)
        elif task == 'captioning':
            sample.set_gt_caption([TEXTS[i], TEXTS[1 - i]])
        elif task == 'retrieval':
            sample.set_text(TEXTS[i])
        elif task == 'mlm':
            sample.set_text(TEXTS[i] if training else MASKED_TEXTS[i])
        images.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
        samples.append(sample)
    data = dict(inputs=None if task == 'mlm' else images,
                data_samples=samples)
    return model.data_preprocessor(data, training)


def _trained_parts(model) -> set:
    """The parts (``image_encoder.<child>``, ``text_encoder``,
    ``decoder.<child>``, ``tasks.<task>``) with a nonzero gradient."""
    parts = set()
    for name, param in model.named_parameters():
        if param.grad is not None and bool(param.grad.abs().sum() > 0):
            words = name.split('.')
            parts.add('.'.join(words[:1 if words[0] == 'text_encoder' else 2]))
    return parts


def _check_backward(model, task: str, losses: dict) -> None:
    """A backward trains the task's parts, and nothing frozen or of
    another task."""
    model.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    assert _trained_parts(model) == TRAINED[task]
    frozen = [n for n, p in model.named_parameters()
              if not p.requires_grad and p.grad is not None]
    assert not frozen
    if task != 'mlm':
        # ResNet stage 1 is frozen (frozen_stages=1), the last one trained
        # (its random residual branches end in a zero BN scale, mmpretrain's
        # zero_init_residual: the shortcut convolution takes the gradient)
        params = dict(model.named_parameters())
        prefix = 'image_encoder.backbone.'
        assert not params[prefix + 'layer1.0.conv1.weight'].requires_grad
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for n, p in params.items()
                   if n.startswith(prefix + 'layer4.'))
    model.zero_grad(set_to_none=True)


def _check_finite(losses: dict, task: str) -> None:
    assert losses and all(k.startswith(f'{task}.') for k in losses)
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), (key, value)


@pytest.mark.parametrize('task',
                         [t for t in TASKS if t not in LOCALIZATION])
def test_loss(model, task):
    """Finite task-prefixed losses; the backward reaches the task's
    parts (MLM: no image part)."""
    torch.manual_seed(0)
    model.train()
    losses = model(**_batch(model, task, training=True), mode='loss')
    _check_finite(losses, task)
    assert all(v > 0 for v in losses.values())
    _check_backward(model, task, losses)


@pytest.mark.parametrize('task', LOCALIZATION)
def test_loss_empty_and_one_box(model, task):
    """mmdet's test_dino: with no ground truth the objectness losses are
    nonzero and the box, mask and denoising losses zero, and so is the
    task's class-name loss, which is taken on the regional tokens matched
    to objects only; with one box per image every loss is nonzero and the
    backward trains the task's parts."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        empty = model(**_batch(model, task, True, num_boxes=0), mode='loss')
    _check_finite(empty, task)
    proposal = f'{task}.proposal.'
    assert any(k.startswith(proposal) for k in empty)
    for key, value in empty.items():
        if key == f'{task}.loss_cls' or any(
                word in key for word in ('bbox', 'iou', 'mask', 'dice',
                                         'dn_')):
            assert value.item() == 0, f'{key} = {value.item()} without boxes'
        else:
            assert key.endswith('loss_cls'), key
            assert value.item() > 0, f'{key} = 0 without boxes'

    losses = model(**_batch(model, task, True, num_boxes=1), mode='loss')
    _check_finite(losses, task)
    assert set(empty) <= set(losses)
    for key, value in losses.items():
        assert value.item() > 0, f'{key} = 0 with one box'
    _check_backward(model, task, losses)


@pytest.mark.parametrize('task', TASKS)
def test_predict(model, task):
    """The task's prediction fields, their shapes and ranges."""
    torch.manual_seed(0)
    model.eval()
    data = _batch(model, task, training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert len(out) == len(SHAPES)
    dims = PAPER.decoder.embed_dims  # 768
    for i, (sample, (_, ori_shape)) in enumerate(zip(out, SHAPES)):
        if task == 'classification':
            assert sample.pred_score.shape == (NUM_CLASSES, )
            assert torch.allclose(sample.pred_score.sum(), torch.tensor(1.))
            assert sample.pred_label.shape == (1, )
        elif task in LOCALIZATION:
            pred = sample.pred_instances
            num = PAPER.tasks[task].num_results  # 100 of 200 x 8
            assert pred.bboxes.shape == (num, 4)
            assert pred.scores.shape == pred.labels.shape == (num, )
            assert bool(((pred.labels >= 0) &
                         (pred.labels < NUM_CLASSES)).all())
            assert bool((pred.scores.diff() <= 0).all())
            h, w = ori_shape  # rescaled to the original image
            assert bool((pred.bboxes >= 0).all())
            assert bool((pred.bboxes[:, 0::2] <= w).all())
            assert bool((pred.bboxes[:, 1::2] <= h).all())
            if task == 'instance_segmentation':
                assert len(pred.masks) == num
                # COCO RLE of the original size, as mmdet's CocoMetric takes
                assert pred.masks[0]['size'] == [h, w]
                assert mask_util.decode(pred.masks[:3]).shape == (h, w, 3)
            else:
                assert 'masks' not in pred
        elif task == 'captioning':
            # random weights: any text of at most 21 tokens (decoded,
            # special tokens dropped; a re-encoding may split it otherwise)
            assert isinstance(sample.pred_caption, str)
        elif task == 'retrieval':
            assert sample.image_feat.shape == (dims, )
            assert sample.text_feat.shape == (1, dims)
            assert sample.pred_score.shape == (len(SHAPES), )
            for feat in (sample.image_feat, sample.text_feat[0]):
                assert torch.allclose(feat.norm(), torch.tensor(1.))
        elif task == 'mlm':
            num_masks = MASKED_TEXTS[i].count('<mask>')
            assert sample.pred_label.shape == (num_masks, )
            assert isinstance(sample.pred_text, str)
            assert '<mask>' not in sample.pred_text
