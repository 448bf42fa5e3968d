# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Inference does not depend on the batch: the whole tiny model (real
region-proposal encoder) predicts the same for an image alone as for the
image padded in a batch with a larger one (trust issue, item 4)."""
import mmcv
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from mmupv2.structures import UPv2DataSample

from .tiny_shapes_model import build_model

#: (h, w) of the crops of one shapes image: the first is padded in the batch
SIZES = [(64, 80), (96, 96)]


def _batch(root: str, task: str, sizes):
    """Crops of a real shapes image (uint8 CHW) with their samples."""
    image = mmcv.imread(f'{root}images/train/000000.png', channel_order='rgb')
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.from_numpy(image[:h, :w]).permute(2, 0, 1)
                      .contiguous())
        meta = dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.))
        samples.append(UPv2DataSample(metainfo=meta).set_task(task))
    return dict(inputs=inputs, data_samples=samples)


def _decode(masks) -> np.ndarray:
    """(N, H, W) from COCO RLE dicts or a mask array."""
    if isinstance(masks, (list, tuple)):
        return np.stack([mask_util.decode(m) for m in masks])
    return np.asarray(masks)


@pytest.fixture(scope='module')
def model(tiny_cfg, small_shapes_root):
    return build_model(tiny_cfg, small_shapes_root).eval()


@pytest.mark.parametrize(
    'task', ['classification', 'detection', 'instance_segmentation',
             'captioning'])
def test_prediction_alone_equals_prediction_in_a_padded_batch(
        model, small_shapes_root, task):
    with torch.no_grad():
        batched = model.test_step(_batch(small_shapes_root, task, SIZES))[0]
        alone = model.test_step(_batch(small_shapes_root, task,
                                       SIZES[:1]))[0]
    tol = dict(rtol=1e-4, atol=1e-4)
    if task == 'classification':
        torch.testing.assert_close(batched.pred_score, alone.pred_score,
                                   **tol)
    elif task == 'captioning':
        assert batched.pred_caption == alone.pred_caption
    else:
        b, a = batched.pred_instances, alone.pred_instances
        torch.testing.assert_close(b.scores, a.scores, **tol)
        assert torch.equal(b.labels, a.labels)
        # boxes in the pixels of the (unpadded) image
        torch.testing.assert_close(b.bboxes, a.bboxes, rtol=1e-4, atol=1e-2)
        assert float(b.bboxes[:, 2].max()) <= SIZES[0][1] + 1e-3
        if task == 'instance_segmentation':
            b_masks, a_masks = _decode(b.masks), _decode(a.masks)
            assert b_masks.shape[-2:] == SIZES[0]
            assert (b_masks != a_masks).mean() < 1e-3
