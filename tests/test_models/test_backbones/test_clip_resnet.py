# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``CLIPModifiedResNet`` (OpenAI CLIP's ResNet image tower) and the
converter of OpenAI's checkpoints, tools/model_converters/clip_to_mmupv2.py.
"""
import os.path as osp
import warnings

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmupv2.models.backbones import CLIPModifiedResNet
from mmupv2.registry import MODELS

from ...scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'clip_to_mmupv2.py')


def _converter():
    return load_script(CONVERTER)


def _small(**kwargs) -> CLIPModifiedResNet:
    torch.manual_seed(0)
    return CLIPModifiedResNet(width=8, **kwargs)


def test_output_shapes():
    model = MODELS.build(dict(type='CLIPModifiedResNet', width=8)).eval()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 16),
                                              (2, 64, 8, 8),
                                              (2, 128, 4, 4),
                                              (2, 256, 2, 2)]
    assert model.out_channels == [32, 64, 128, 256]

    outs = _small(out_indices=(1, 3)).eval()(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 8, 12),
                                              (1, 256, 2, 3)]


def test_rn50_names_and_channels():
    """RN50's state dict is OpenAI's ``visual.*`` without ``visual.`` and
    without the attention pool; its stages give ResNet-50's channels."""
    model = CLIPModifiedResNet()
    state = model.state_dict()
    shapes = {
        'conv1.weight': (32, 3, 3, 3),
        'bn1.running_mean': (32, ),
        'conv2.weight': (32, 32, 3, 3),
        'conv3.weight': (64, 32, 3, 3),
        'bn3.num_batches_tracked': (),
        'layer1.0.conv1.weight': (64, 64, 1, 1),
        'layer1.0.downsample.0.weight': (256, 64, 1, 1),
        'layer1.0.downsample.1.running_mean': (256, ),
        'layer2.0.conv2.weight': (128, 128, 3, 3),
        'layer2.0.downsample.1.weight': (512, ),
        'layer3.5.bn3.running_var': (1024, ),
        'layer4.2.conv3.weight': (2048, 512, 1, 1),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith('attnpool') for k in state)
    assert not any('downsample.-1' in k for k in state)  # the AvgPool2d
    assert 'layer1.1.downsample.0.weight' not in state
    assert [len(getattr(model, f'layer{i}')) for i in (1, 2, 3, 4)] == [
        3, 4, 6, 3
    ]
    assert model.out_channels == [256, 512, 1024, 2048]
    assert len(state) == 330  # OpenAI RN50: 330 visual.* without attnpool


def _trainable_prefixes(model):
    return {
        n.split('.')[0]
        for n, p in model.named_parameters() if p.requires_grad
    }


def test_frozen_stages_and_norm_eval():
    model = _small(frozen_stages=1)
    model.train()
    assert _trainable_prefixes(model) == {'layer2', 'layer3', 'layer4'}
    for name in ('bn1', 'bn2', 'bn3', 'layer1'):
        assert not getattr(model, name).training, name
    assert model.layer2.training and model.layer2[0].bn1.training

    model = _small(frozen_stages=0)
    model.train()
    assert _trainable_prefixes(model) == {f'layer{i}' for i in (1, 2, 3, 4)}

    model = _small(norm_eval=True)
    model.train()
    assert model.training and model.layer4[0].conv1.training
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    before = model.layer4[0].bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(model.layer4[0].bn1.running_mean, before)

    model = _small(norm_cfg=dict(type='BN', requires_grad=False))
    assert not any(p.requires_grad for m in model.modules()
                   if isinstance(m, _BatchNorm) for p in m.parameters())
    assert model.conv1.weight.requires_grad


class _OpenAIStyle(nn.Module):
    """What OpenAI's RN50.pt holds, in small: ``visual`` with an attention
    pool and fp16 convolutions, next to the text tower's tensors."""

    def __init__(self):
        super().__init__()
        self.visual = _small()
        self.visual.attnpool = nn.Linear(256, 8)
        self.token_embedding = nn.Embedding(10, 4)
        self.logit_scale = nn.Parameter(torch.tensor(4.6))
        for m in self.visual.modules():
            if isinstance(m, nn.Conv2d):
                m.half()
        torch.manual_seed(1)
        with torch.no_grad():  # nothing may match the backbone by chance
            for value in self.state_dict().values():
                if torch.is_floating_point(value):
                    value.copy_(torch.randn_like(value))

    def forward(self, x):
        return x * self.logit_scale


@pytest.mark.parametrize('fmt', ['torchscript', 'state_dict'])
def test_converter_round_trip(tmp_path, capsys, fmt):
    """OpenAI-style file -> converter -> ``init_cfg`` Pretrained: every
    ``visual.*`` tensor but the attention pool lands in the backbone (cast
    to float32); the other keys are dropped."""
    clip = _OpenAIStyle()
    state = clip.state_dict()
    src, dst = tmp_path / 'RN50.pt', tmp_path / 'out' / 'backbone.pth'
    if fmt == 'torchscript':  # as clip.load downloads it
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)
            torch.jit.trace(clip, torch.ones(1)).save(str(src))
    else:
        torch.save(state, src)
    assert _converter().main([str(src), str(dst)]) == 0
    backbone_keys = set(_small().state_dict())
    out = capsys.readouterr().out
    assert f'wrote {len(backbone_keys)} tensors' in out
    assert 'layers (3, 4, 6, 3), width 8' in out
    assert 'dropped 2 attnpool tensors' in out

    saved = torch.load(dst, map_location='cpu')
    assert set(saved) == {'state_dict', 'meta'}
    assert set(saved['state_dict']) == backbone_keys
    assert torch.float16 not in {v.dtype for v in saved['state_dict'].values()}
    model = _small(init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    for key, value in model.state_dict().items():
        expected = state['visual.' + key]
        if torch.is_floating_point(expected):
            expected = expected.float()
        assert torch.equal(value, expected), key


def test_converter_reads_a_state_dict_entry(tmp_path):
    src, dst = tmp_path / 'ckpt.pth', tmp_path / 'out.pth'
    torch.save(dict(state_dict={'visual.conv1.weight': torch.ones(2)}), src)
    assert _converter().main([str(src), str(dst)]) == 0
    assert list(torch.load(dst)['state_dict']) == ['conv1.weight']


def test_converter_rejects_non_clip_files(tmp_path):
    src = tmp_path / 'resnet50.pth'
    torch.save({'conv1.weight': torch.ones(2), 'fc.bias': torch.ones(2)},
               src)
    dst = tmp_path / 'out.pth'
    with pytest.raises(SystemExit) as error:
        _converter().main([str(src), str(dst)])
    message = str(error.value.code)
    assert str(src) in message and 'visual.' in message
    assert not dst.exists()
