# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks
from mmengine import Config
from mmengine.structures import InstanceData

from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

CONFIG_DIR = osp.join(
    osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')


def _encoder_config(name: str) -> Config:
    """``image_encoder`` of ``configs/_base_/models/image_encoder_{name}.py``
    with a randomly initialised backbone (nothing is downloaded)."""
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'image_encoder_{name}.py')).image_encoder
    cfg.backbone.init_cfg = None
    return cfg


def _build_encoder(name: str, **options):
    torch.manual_seed(0)
    cfg = _encoder_config(name)
    cfg.update(options)
    encoder = MODELS.build(cfg)
    encoder.init_weights()
    return encoder


def _make_batch(img_shapes: Sequence[Tuple[int, int]],
               boxes: Sequence[List[List[float]]],
               batch_shape: Tuple[int, int] = None):
    """Random images padded to ``batch_shape`` and samples whose masks fill
    their boxes (xyxy pixels)."""
    batch_shape = batch_shape or tuple(
        max(s[i] for s in img_shapes) for i in (0, 1))
    samples = []
    for (h, w), img_boxes in zip(img_shapes, boxes):
        masks = np.zeros((len(img_boxes), h, w), np.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, img_boxes):
            m[int(y1):int(y2), int(x1):int(x2)] = 1
        sample = UPv2DataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                          scale_factor=(1.0, 1.0),
                          batch_input_shape=batch_shape))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(img_boxes, dtype=torch.float32).reshape(
                -1, 4),
            labels=torch.zeros(len(img_boxes), dtype=torch.long),
            masks=BitmapMasks(masks, h, w))
        samples.append(sample)
    torch.manual_seed(1)
    inputs = torch.zeros(len(samples), 3, *batch_shape)
    for img, (h, w) in zip(inputs, img_shapes):
        img[:, :h, :w] = torch.randn(3, h, w)
    return inputs, samples


@pytest.fixture(scope='session')
def encoder_config():
    """``encoder_config(name)``: the config of an encoder setting."""
    return _encoder_config


@pytest.fixture(scope='session')
def build_encoder():
    """``build_encoder(name)``: a randomly initialised encoder of a
    setting (``r50``, ``swin-b``, ``tiny``)."""
    return _build_encoder


@pytest.fixture(scope='session')
def make_batch():
    """``make_batch(img_shapes, boxes, batch_shape=None)`` -> (inputs (B, 3,
    H, W), samples with box-filling masks)."""
    return _make_batch


@pytest.fixture(scope='module')
def tiny_encoder():
    return _build_encoder('tiny')
