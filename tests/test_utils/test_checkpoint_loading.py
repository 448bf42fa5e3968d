# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Weights into Uni-Perceiver v2: whole-model checkpoints with a strict key
check, backbones from mmpretrain / mmdet / torchvision / mmupv2 files (by
our loader and by mmengine's ``Pretrained`` initialiser), and RoBERTa from a
local Hugging Face folder."""
import os.path as osp
import re

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import save_checkpoint

from mmupv2.datasets.shapes import generate_shapes
from mmupv2.registry import MODELS
from mmupv2.utils import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    load_backbone_checkpoint,
    load_model_checkpoint,
)
from mmupv2.utils.checkpoint_loading import backbone_state_dict

from ..untrusted import RunsCode, served_directory

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_ENCODER = osp.join(ROOT, 'configs', '_base_', 'models',
                        'image_encoder_tiny.py')
CLASSES = ['circle', 'square', 'triangle']


def save_tiny_roberta(folder: str, tokenizer_dir: str) -> torch.nn.Module:
    """Write a Hugging Face folder (config, weights, tokenizer) holding a
    1-layer RobertaModel with the shapes tokenizer; return the model."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel
    tok = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    config = RobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=40, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = RobertaModel(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


@pytest.fixture(scope='module')
def hf_folder(tmp_path_factory):
    """(folder, the saved RobertaModel)."""
    shapes = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes(shapes, num_train=8, num_val=2, img_size=64)
    folder = str(tmp_path_factory.mktemp('tiny_roberta'))
    return folder, save_tiny_roberta(folder, osp.join(shapes, 'tokenizer'))


def _backbone_cfg(**overrides) -> dict:
    cfg = Config.fromfile(TINY_ENCODER).image_encoder.backbone
    cfg.init_cfg = None
    cfg.update(overrides)
    return cfg.to_dict()


def _build_model(hf_dir: str, seed: int, backbone_init=None, **backbone):
    init_default_scope('mmupv2')
    torch.manual_seed(seed)
    encoder = Config.fromfile(TINY_ENCODER).image_encoder
    encoder.backbone.init_cfg = backbone_init
    encoder.backbone.update(backbone)
    return MODELS.build(
        dict(
            type='UniPerceiverV2',
            image_encoder=encoder,
            text_encoder=dict(
                type='HFTextEncoder', name_or_path=hf_dir, max_length=16),
            decoder=dict(
                type='UnifiedDecoder', embed_dims=32, num_layers=1,
                num_heads=2, feedforward_channels=64, image_in_dims=64),
            tasks=dict(
                classification=dict(
                    type='ClassificationTask', classes=CLASSES),
                detection=dict(type='DetectionTask', classes=CLASSES))))


@pytest.fixture(scope='module')
def models(hf_folder):
    """Two tiny models with different random weights."""
    return _build_model(hf_folder[0], 0), _build_model(hf_folder[0], 1)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------ whole model
def test_model_checkpoint_round_trip(models, hf_folder, tmp_path):
    src, dst = models[0], _build_model(hf_folder[0], 4)
    assert not _same(src, dst)
    path = str(tmp_path / 'iter_10.pth')
    save_checkpoint(
        dict(state_dict=src.state_dict(), meta=dict(iter=10)), path)
    checkpoint = load_model_checkpoint(dst, path)
    assert _same(src, dst)
    assert checkpoint['meta']['iter'] == 10


def test_model_checkpoint_of_a_ddp_save(models, hf_folder, tmp_path):
    src = models[0]
    dst = _build_model(hf_folder[0], 2)
    path = str(tmp_path / 'ddp.pth')
    torch.save(
        dict(state_dict={f'module.{k}': v
                         for k, v in src.state_dict().items()}), path)
    load_model_checkpoint(dst, path)
    assert _same(src, dst)


def test_model_checkpoint_names_missing_and_unexpected_keys(
        models, tmp_path):
    src, dst = models
    state = src.state_dict()
    gone = 'decoder.norm.weight'
    del state[gone]
    state['decoder.extra_head.weight'] = torch.zeros(3)
    path = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_model_checkpoint(dst, path)
    message = str(info.value)
    assert path in message
    assert gone in message and 'decoder.extra_head.weight' in message
    assert 'missing keys (1)' in message and 'unexpected keys (1)' in message
    assert info.value.missing_keys == [gone]
    assert info.value.unexpected_keys == ['decoder.extra_head.weight']
    # non-strict: loads the rest and goes on
    before = dst.decoder.norm.weight.clone()
    load_model_checkpoint(dst, path, strict=False)
    assert torch.equal(dst.decoder.norm.weight, before)
    assert torch.equal(dst.decoder.spe_token, src.decoder.spe_token)


def test_model_checkpoint_names_a_shape_mismatch(models, tmp_path):
    src, dst = models
    state = src.state_dict()
    state['decoder.spe_token'] = torch.zeros(1, 1, 7)
    path = str(tmp_path / 'shape.pth')
    torch.save(state, path)  # a bare state dict works too
    with pytest.raises(CheckpointMismatchError, match='decoder.spe_token'):
        load_model_checkpoint(dst, path)


def test_model_checkpoint_counts_and_partial_load(models, tmp_path):
    """The message starts with the three counts and says how to allow a
    partial load; strict=False (--allow-partial) loads what fits."""
    src, dst = models
    state = src.state_dict()
    del state['decoder.norm.weight']
    state['decoder.extra.weight'] = torch.zeros(3)
    state['decoder.spe_token'] = torch.zeros(1, 1, 7)
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_model_checkpoint(dst, path)
    message = str(info.value)
    assert message.startswith(
        f'{path} does not fit the model (1 missing, 1 unexpected, 1 '
        'shape-mismatched keys)')
    assert re.search(r'shape mismatches \(1\): decoder\.spe_token: '
                     r'checkpoint torch\.Size\(\[1, 1, 7\]\)', message)
    assert '--allow-partial' in message
    assert info.value.shape_mismatches[0].startswith('decoder.spe_token')
    spe, norm = dst.decoder.spe_token.clone(), dst.decoder.norm.weight.clone()
    load_model_checkpoint(dst, path, strict=False)
    assert torch.equal(dst.decoder.spe_token, spe)  # kept: wrong shape
    assert torch.equal(dst.decoder.norm.weight, norm)  # kept: missing
    assert torch.equal(dst.decoder.norm.bias, src.decoder.norm.bias)


# -------------------------------------------------------------- backbones
def _reference_backbone(seed: int, package: str = 'mmpretrain', **overrides):
    """A tiny ResNet-18 as in image_encoder_tiny.py, from ``package``."""
    torch.manual_seed(seed)
    cfg = _backbone_cfg(**overrides)
    if package == 'mmdet':  # the same network, mmdet's implementation
        cfg['type'] = 'mmdet.ResNet'
    return MODELS.build(cfg)


def test_backbone_from_mmpretrain_classifier(models, tmp_path):
    model = models[1]
    ref = _reference_backbone(5)
    path = str(tmp_path / 'resnet18_8xb32_in1k.pth')
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 128)
    save_checkpoint(dict(state_dict=state, meta=dict()), path)
    report = load_backbone_checkpoint(model, path)
    assert _same(model.image_encoder.backbone, ref)
    assert report.source == f'{path} [backbone.]'
    assert report.num_loaded == len(ref.state_dict())
    assert not report.missing_keys and not report.unexpected_keys


def test_backbone_from_mmpretrain_classifier_by_init_cfg(hf_folder,
                                                         tmp_path):
    """mmengine's initialiser reads the same file (``prefix='backbone.'``)
    when the model's weights are initialised."""
    ref = _reference_backbone(6)
    path = str(tmp_path / 'classifier.pth')
    save_checkpoint(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in ref.state_dict().items()
        }), path)
    model = _build_model(
        hf_folder[0], 3,
        backbone_init=dict(
            type='Pretrained', checkpoint=path, prefix='backbone.'))
    assert not _same(model.image_encoder.backbone, ref)
    model.init_weights()
    assert _same(model.image_encoder.backbone, ref)


def test_init_cfg_checkpoint_that_runs_code(hf_folder, tmp_path,
                                            monkeypatch):
    """``UniPerceiverV2.init_weights`` reads ``init_cfg`` files (local and
    http) with mmupv2's weights-only loader, not mmengine's."""
    monkeypatch.delenv('MMUPV2_TRUST_CHECKPOINTS', raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    marker = tmp_path / 'ran'
    served = tmp_path / 'served'
    served.mkdir()
    torch.save(dict(state_dict={}, meta=RunsCode(marker)),
               str(served / 'evil.pth'))
    with served_directory(served) as base:
        for path in (str(served / 'evil.pth'), f'{base}/evil.pth'):
            model = _build_model(
                hf_folder[0], 3,
                backbone_init=dict(type='Pretrained', checkpoint=path))
            with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
                model.init_weights()
            assert not marker.exists()


def test_image_encoder_from_a_model_checkpoint_by_init_cfg(models, tmp_path):
    """A whole image encoder (e.g. one trained on COCO detection) from an
    mmupv2 checkpoint: ``prefix='image_encoder.'`` on the encoder."""
    src = models[0]
    path = str(tmp_path / 'upv2.pth')
    save_checkpoint(dict(state_dict=src.state_dict()), path)
    encoder_cfg = Config.fromfile(TINY_ENCODER).image_encoder
    encoder_cfg.backbone.init_cfg = None
    encoder_cfg.init_cfg = dict(
        type='Pretrained', checkpoint=path, prefix='image_encoder.')
    torch.manual_seed(9)
    encoder = MODELS.build(encoder_cfg)
    encoder.init_weights()  # children first, then the checkpoint
    assert _same(encoder, src.image_encoder)


def test_backbone_from_mmdet_detector(hf_folder, tmp_path):
    """An mmdet detector's ResNet has the keys of mmpretrain's, with the
    standard stem of the paper configs' ResNet-50 (a deep stem is named
    differently by the two packages)."""
    model = _build_model(hf_folder[0], 1, deep_stem=False)
    ref = _reference_backbone(7, 'mmdet', deep_stem=False)
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()}
    state['neck.convs.0.conv.weight'] = torch.zeros(4, 4, 1, 1)
    state['bbox_head.cls_branches.0.weight'] = torch.zeros(80, 256)
    path = str(tmp_path / 'dino-4scale_r18_coco.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    load_backbone_checkpoint(model, path)
    assert _same(model.image_encoder.backbone, ref)


def test_backbone_from_plain_and_mmupv2_checkpoints(models, tmp_path):
    model = models[1]
    # torchvision-style: no prefix, a classifier `fc` (ignored)
    ref = _reference_backbone(8)
    plain = dict(ref.state_dict(), **{'fc.weight': torch.zeros(10, 128)})
    path = str(tmp_path / 'plain.pth')
    torch.save(plain, path)
    report = load_backbone_checkpoint(model, path)
    assert report.source.endswith('[no prefix]')
    assert _same(model.image_encoder.backbone, ref)
    # an mmupv2 model checkpoint: keys under image_encoder.backbone.
    src = models[0]
    path = str(tmp_path / 'upv2.pth')
    save_checkpoint(dict(state_dict=src.state_dict()), path)
    load_backbone_checkpoint(model.image_encoder, path)  # encoder works too
    assert _same(model.image_encoder.backbone, src.image_encoder.backbone)


def test_backbone_checkpoint_that_does_not_fit(models, tmp_path):
    model = models[1]
    ref = _reference_backbone(9)
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()}
    path = str(tmp_path / 'classifier.pth')
    torch.save(dict(state_dict=state), path)
    # a wrong prefix: the message names the prefixes the file has
    with pytest.raises(KeyError, match=re.escape("'neck.'")) as info:
        load_backbone_checkpoint(model, path, prefix='neck.')
    assert 'backbone.layer1' in str(info.value)
    # a backbone without its last stage: missing keys named, unless allowed
    truncated = {k: v for k, v in state.items() if '.layer4.' not in k}
    torch.save(dict(state_dict=truncated), path)
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing keys \(\d+\): layer4\.'):
        load_backbone_checkpoint(model, path)
    report = load_backbone_checkpoint(
        model, path, allow_missing=(r'layer4\.', ))
    assert report.missing_keys and all(
        k.startswith('layer4.') for k in report.missing_keys)


def test_backbone_state_dict_prefixes():
    state = {'backbone.conv1.weight': torch.zeros(1), 'head.w': torch.ones(1)}
    sd, prefix = backbone_state_dict(state)
    assert prefix == 'backbone.' and list(sd) == ['conv1.weight']
    sd, prefix = backbone_state_dict(state, prefix=None)
    assert prefix == '' and list(sd) == list(state)


# ----------------------------------------------------------- text encoder
def test_text_encoder_from_local_hf_folder(hf_folder):
    from mmupv2.models.text_encoders import HFTextEncoder
    folder, saved = hf_folder
    encoder = HFTextEncoder(name_or_path=folder, max_length=16)
    assert len(encoder.tokenizer) == saved.config.vocab_size
    assert encoder.tokenizer.pad_token_id == saved.config.pad_token_id
    loaded = encoder.model.state_dict()
    for key, value in saved.state_dict().items():
        if not key.startswith('pooler.'):  # HFTextEncoder drops the pooler
            assert torch.equal(loaded[key], value), key
    ids, mask = encoder.tokenize(['a red circle'])
    assert encoder(ids, mask).shape == (1, ids.shape[1], 32)
