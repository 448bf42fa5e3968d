# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""CLIP's ResNet (OpenAI's ``ModifiedResNet``) as a multi-scale backbone,
for the "CLIP / CLIP data" row of the paper's Table 5."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.multimodal.chinese_clip.chinese_clip import (
    Bottleneck as CLIPBottleneck,
)
from torch.nn.modules.batchnorm import _BatchNorm

from mmupv2.registry import MODELS


@MODELS.register_module()
class CLIPModifiedResNet(BaseModule):
    """The image tower of OpenAI CLIP's ResNets (``ModifiedResNet`` of
    ``clip/model.py``) without its attention pool, returning the four stage
    outputs like mmpretrain's ``ResNet``.

    The architecture is OpenAI's: a 3-convolution stem (``conv1`` 3x3
    stride 2 to ``width / 2`` channels, ``conv2`` 3x3, ``conv3`` 3x3 to
    ``width``, each with BN and ReLU) followed by a 2x2 average pool, then
    four stages of CLIP's bottleneck (mmpretrain's Chinese-CLIP
    ``Bottleneck``, OpenAI's block; strides 1, 2, 2, 2). Module
    names are OpenAI's, so the state dict is the ``visual.*`` part of a
    CLIP checkpoint without the ``visual.`` prefix (e.g. ``conv1.weight``,
    ``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``,
    ``layer1.0.downsample.1.running_mean``); convert ``RN50.pt`` with
    ``tools/model_converters/clip_to_mmupv2.py``.

    ``attnpool`` (CLIP's global attention pooling of the stride-32 map into
    the joint embedding space) is left out: the Uni-Perceiver v2 image
    encoder pools the feature maps itself (its global attention pools and
    regional tokens), so the converter drops ``visual.attnpool.*``.

    Args:
        layers (Sequence[int]): blocks per stage; RN50 is ``(3, 4, 6, 3)``
            (RN101 ``(3, 4, 23, 3)``).
        width (int): stem width; stage ``i`` (0-based) outputs
            ``width * 4 * 2**i`` channels (RN50: 64 -> 256 ... 2048).
        out_indices (Sequence[int]): stages whose outputs are returned.
        frozen_stages (int): as mmpretrain's ``ResNet``: -1 freezes
            nothing, 0 the stem, ``i`` the stem and ``layer1`` ...
            ``layer{i}`` (no gradients, norm layers in eval mode).
        norm_cfg (dict, optional): ``dict(type='BN', requires_grad=...)``;
            trainable BN by default (``requires_grad=False`` freezes the
            affine parameters, as the ResNet-50 configs do). CLIP's blocks
            are BN; for SyncBN use mmengine's ``sync_bn`` setting.
        norm_eval (bool): keep every BN layer in eval mode (running
            statistics fixed) while training.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='checkpoints/clip_rn50_backbone.pth')``.
    """

    def __init__(self,
                 layers: Sequence[int] = (3, 4, 6, 3),
                 width: int = 64,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: Optional[dict] = None,
                 norm_eval: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        if norm_cfg.get('type') not in ('BN', 'BN2d') or set(norm_cfg) - {
                'type', 'requires_grad'}:
            raise ValueError('CLIPModifiedResNet: norm_cfg must be '
                             "dict(type='BN'[, requires_grad=...]), got "
                             f'{norm_cfg}')
        assert len(layers) == 4, f'4 stages expected, got {layers}'
        out_indices = tuple(out_indices)
        for i in out_indices:
            assert 0 <= i < 4, f'out_indices must be in 0-3, got {i}'
        assert -1 <= frozen_stages <= 4, frozen_stages
        self.layers = tuple(layers)
        self.width = width
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        # the 3-layer stem: (B, 3, H, W) -> (B, width, H / 4, W / 4)
        half = width // 2
        self.conv1 = nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(half, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)

        inplanes = width
        self.out_channels = []
        for i, num_blocks in enumerate(self.layers):
            planes = width * 2**i
            blocks = [CLIPBottleneck(inplanes, planes, 1 if i == 0 else 2)]
            inplanes = planes * CLIPBottleneck.expansion
            blocks += [
                CLIPBottleneck(inplanes, planes) for _ in range(1, num_blocks)
            ]
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            self.out_channels.append(inplanes)
        if not norm_cfg.get('requires_grad', True):
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.requires_grad_(False)
        self._freeze_stages()

    def _stem_modules(self) -> Tuple[nn.Module, ...]:
        return (self.conv1, self.bn1, self.conv2, self.bn2, self.conv3,
                self.bn3)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for m in self._stem_modules():
                m.eval()
                for param in m.parameters():
                    param.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            m = getattr(self, f'layer{i}')
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Stage outputs of images.

        Args:
            x (Tensor): (B, 3, H, W) normalised images (CLIP's mean / std).

        Returns:
            tuple[Tensor]: for each of ``out_indices`` (in order), stage
            ``i``'s (B, ``width * 4 * 2**i``, H / 2**(i + 2), W / 2**(i +
            2)) map; RN50: (B, 256, H/4, W/4), (B, 512, H/8, W/8),
            (B, 1024, H/16, W/16), (B, 2048, H/32, W/32).
        """
        x = x.type(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))  # (B, width/2, H/2, W/2)
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))  # (B, width, H/2, W/2)
        x = self.avgpool(x)  # (B, width, H/4, W/4)
        outs = []
        for i in range(4):
            x = getattr(self, f'layer{i + 1}')(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'CLIPModifiedResNet':
        """Set the training mode, keeping the frozen stages and (with
        ``norm_eval``) every BN layer in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
