# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmupv2.models.layers import (
    PaddingMasker,
    masked_group_norm,
    padding_masks,
    replicate_padding,
    valid_sizes,
)


def test_valid_sizes_follow_the_stride():
    # stride 4 of a 96 x 128 batch: 64 x 80 pixels cover 16 x 20 cells
    assert valid_sizes([(64, 80)], (96, 128), (24, 32)) == [(16, 20)]
    # stride 64 of a 96-pixel batch has 2 rows; 64 pixels cover one of
    # them (a nearest resize of the pixel mask would say 2)
    assert valid_sizes([(64, 96)], (96, 96), (2, 2)) == [(1, 2)]
    mask = padding_masks([(64, 96), (96, 96)], (96, 96), (2, 2), 'cpu')
    assert mask.tolist() == [[[False, False], [True, True]],
                             [[False, False], [False, False]]]
    # no power-of-two stride (a ViT's 14): the ratio
    assert valid_sizes([(112, 224)], (224, 224), (16, 16)) == [(8, 16)]


def test_masked_group_norm():
    torch.manual_seed(0)
    norm = nn.GroupNorm(2, 4)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(2, 4, 5, 6)
    everything = torch.ones(2, 1, 5, 6, dtype=torch.bool)
    torch.testing.assert_close(masked_group_norm(x, everything, norm),
                               norm(x))
    # statistics of the valid 3 x 4 corner only, whatever the padding holds
    valid = torch.zeros(2, 1, 5, 6, dtype=torch.bool)
    valid[:, :, :3, :4] = True
    padded = x.clone()
    padded[~valid.expand_as(x)] = 1e3
    out = masked_group_norm(padded, valid, norm)
    torch.testing.assert_close(out[..., :3, :4],
                               norm(x[..., :3, :4].contiguous()))


def test_replicate_padding():
    x = torch.arange(12.).reshape(1, 1, 3, 4)
    out = replicate_padding(x, [(2, 3)])
    assert out[0, 0].tolist() == [[0, 1, 2, 2], [4, 5, 6, 6], [4, 5, 6, 6]]
    assert replicate_padding(x, [(3, 4)]) is x
    # upsampling the filled map = upsampling the image alone
    up = F.interpolate(out, size=(6, 8), mode='bilinear')[..., :4, :6]
    alone = F.interpolate(x[..., :2, :3], size=(4, 6), mode='bilinear')
    torch.testing.assert_close(up, alone)


@pytest.mark.parametrize('pool', ['max', 'avg'])
def test_masker_equals_the_image_alone(pool):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1) if pool == 'max' else nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.GroupNorm(2, 8),
        nn.Conv2d(8, 4, 1))
    masker = PaddingMasker(net)
    assert masker.num_hooked == 4
    image = torch.randn(1, 3, 16, 24)
    batch = torch.randn(2, 3, 32, 32)
    batch[0] = 0
    batch[0, :, :16, :24] = image[0]
    with masker.images([(16, 24), (32, 32)], (32, 32)):
        batched = net(batch)
    with masker.images([(16, 24)], (16, 24)):
        alone = net(image)
    torch.testing.assert_close(batched[:1, :, :4, :6], alone)
    # outside the context the hooks do nothing: padding leaks again
    assert not torch.allclose(net(batch)[:1, :, :4, :6], alone, atol=1e-3)
