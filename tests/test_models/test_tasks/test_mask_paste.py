# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Masks pasted one window at a time equal the dense upsampling they
replace, and their RLE is pycocotools' own."""
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
import torch.nn.functional as F

from mmupv2.models.tasks.mask_paste import (
    MaskPaster,
    decode_rle_masks,
    window_to_rle,
)


def _dense(logits, pad_shape, img_shape, out_shape, threshold=0.5):
    """The former all-at-once code: crop the grid to the image's cells,
    upsample to the padded pixels, crop to the image, upsample to the
    output size, threshold the sigmoid."""
    (grid_h, grid_w), (h, w) = logits.shape[-2:], img_shape
    stride_h, stride_w = pad_shape[0] / grid_h, pad_shape[1] / grid_w
    cells_h, cells_w = math.ceil(h / stride_h), math.ceil(w / stride_w)
    up = F.interpolate(
        logits[None, :, :cells_h, :cells_w],
        size=(round(cells_h * stride_h), round(cells_w * stride_w)),
        mode='bilinear', align_corners=False)[..., :h, :w]
    up = F.interpolate(up, size=out_shape, mode='bilinear',
                       align_corners=False)
    return up[0].sigmoid() > threshold


@pytest.mark.parametrize('seed', range(8))
def test_paste_equals_dense_upsampling(seed):
    rng = np.random.default_rng(seed)
    grid = tuple(int(v) for v in rng.integers(3, 16, 2))
    pad = (grid[0] * 4, grid[1] * 4)
    img = tuple(int(rng.integers(p - 11, p + 1)) for p in pad)
    out = tuple(int(v) for v in rng.integers(1, 150, 2))
    logits = torch.from_numpy(rng.normal(-1, 3, (6, *grid))).float()
    paster = MaskPaster(grid, pad, img, out, 0.5)
    rles = [paster.paste(m) for m in logits]
    dense = _dense(logits, pad, img, out)
    assert torch.equal(decode_rle_masks(rles), dense)
    expected = mask_util.encode(
        np.asfortranarray(dense.permute(1, 2, 0).numpy().astype(np.uint8)))
    assert [r['counts'] for r in rles] == [e['counts'] for e in expected]


def test_window_to_rle_matches_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        full = rng.random((h, w)) < rng.random()
        if rng.random() < 0.2:
            full[:] = True  # runs that go on from one column to the next
        ys, xs = np.nonzero(full)
        if len(ys):
            top, left = int(rng.integers(0, ys.min() + 1)), int(
                rng.integers(0, xs.min() + 1))
            window = full[top:ys.max() + 1, left:xs.max() + 1]
        else:
            top = left = 0
            window = np.zeros((0, 0), bool)
        rle = window_to_rle(window, top, left, h, w)
        expected = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
        assert rle == expected


def test_empty_and_full_masks():
    paster = MaskPaster((4, 4), (16, 16), (16, 16), (40, 30), 0.5)
    empty = paster.paste(torch.full((4, 4), -5.0))
    full = paster.paste(torch.full((4, 4), 5.0))
    masks = decode_rle_masks([empty, full])
    assert masks.shape == (2, 40, 30)
    assert not masks[0].any() and masks[1].all()
    assert decode_rle_masks([], (40, 30)).shape == (0, 40, 30)


def test_downsampled_output_equals_dense():
    """An output smaller than the image: some cells reach no output
    pixel; a mask only on those is empty, as the dense code gives."""
    logits = torch.full((3, 10, 10), -5.0)
    logits[0, 3, 5] = 5.0  # a cell no output pixel samples
    logits[1, :, 5] = 5.0  # a column no output pixel samples
    logits[2, 7:, :] = 5.0
    paster = MaskPaster((10, 10), (40, 40), (40, 40), (3, 2), 0.5)
    dense = _dense(logits, (40, 40), (40, 40), (3, 2))
    assert torch.equal(
        decode_rle_masks([paster.paste(m) for m in logits]), dense)
