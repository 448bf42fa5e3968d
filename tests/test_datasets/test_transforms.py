# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmupv2.datasets.task_dataset import build_transform


@pytest.mark.parametrize('flip', ['mmpretrain.RandomFlip', 'mmdet.RandomFlip'])
@pytest.mark.parametrize('shape', [(1, 1), (1, 5), (5, 1)])
def test_flipped_one_pixel_image_packs(flip, shape):
    """A flip of an image one pixel wide or high is a view with a negative
    stride that numpy still calls contiguous; packing it used to fail at
    random (with prob 0.5) in ``torch.from_numpy``, without the path."""
    img = np.arange(np.prod(shape) * 3, dtype=np.uint8).reshape(*shape, 3)
    results = dict(img=img, img_shape=shape, ori_shape=shape, task='detection',
                   img_path='tiny.png')
    results = build_transform(dict(type=flip, prob=1.0))(results)
    packed = build_transform(dict(type='PackUPv2Inputs'))(results)
    assert packed['inputs'].shape == (3, *shape)
    assert packed['inputs'].permute(1, 2, 0).numpy().tolist() == \
        img[:, ::-1].tolist()


def _det_results(h, w):
    masks = np.zeros((1, h, w), np.uint8)
    masks[0, :h // 2, :w // 2] = 1
    return dict(
        img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w), ori_shape=(h, w),
        gt_bboxes=HorizontalBoxes(np.array([[0, 0, w / 2, h / 2]],
                                           np.float32)),
        gt_masks=BitmapMasks(masks, h, w))


def test_limit_image_size_shrinks_only_large_images():
    limit = build_transform(dict(type='LimitImageSize', max_size=100))
    out = limit(_det_results(400, 200))
    assert out['img'].shape[:2] == out['img_shape'] == (100, 50)
    assert out['scale_factor'] == (0.25, 0.25)
    assert out['gt_bboxes'].numpy().tolist() == [[0, 0, 25, 50]]
    assert out['gt_masks'].masks.shape == (1, 100, 50)
    small = _det_results(60, 80)
    out = limit(small)  # never upsampled
    assert out['img'].shape[:2] == (60, 80) and 'scale_factor' not in out
    with pytest.raises(ValueError, match='max_size'):
        build_transform(dict(type='LimitImageSize', max_size=0))


def test_limit_image_size_composes_scale_factor():
    """After another resize, ``scale_factor`` still maps to the original
    image (what the heads divide predictions by)."""
    results = _det_results(300, 600)
    results = build_transform(
        dict(type='mmdet.Resize', scale=(1200, 1200), keep_ratio=True))(
            results)  # 600x1200, scale 2
    results = build_transform(dict(type='LimitImageSize',
                                   max_size=300))(results)
    assert results['img_shape'] == (150, 300)
    assert results['scale_factor'] == pytest.approx((0.5, 0.5))
    assert results['ori_shape'] == (300, 600)
