# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The image encoder's proposals in image pixels: the one box / mask
post-processing of :class:`~.detection.DetectionTask` (and instance
segmentation) and of the class-agnostic
:class:`~mmupv2.models.detectors.ClassAgnosticProposer`.

::

    boxes (K, 4) cxcywh in [0, 1] of img_shape
      --> xyxy pixels of img_shape, clamped to the image
      --> / scale_factor (rescale), clamped to ori_shape       (K, 4)
    mask logits (O, H/4, W/4) on the padded batch's grid, K kept indices
      --> the cells that cover the image, upsampled one proposal at a
          time (MaskPaster) --> K COCO RLE of (H, W)          (rescale:
          ori_shape, else img_shape)

Rescaling needs ``scale_factor`` (boxes) and ``ori_shape`` (masks) in the
sample's meta information; without them the results stay in ``img_shape``
pixels.
"""
from typing import Dict, List, Tuple

from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from torch import Tensor

from .mask_paste import MaskPaster


def output_shape(meta: dict, rescale: bool) -> Tuple[int, int]:
    """(H, W) of the results: ``ori_shape`` to rescale (when known), else
    ``img_shape``."""
    if rescale and 'ori_shape' in meta:
        return tuple(meta['ori_shape'][:2])
    return tuple(meta['img_shape'][:2])


def proposal_boxes(boxes: Tensor, meta: dict, rescale: bool) -> Tensor:
    """Normalised proposal boxes -> pixel boxes.

    Clamped to the input image and divided by ``scale_factor`` ``(w, h)``,
    as mmdet's DINO head, then clamped to ``ori_shape``, so a box never
    leaves the original image by a rounding of the scale factor.

    Args:
        boxes (Tensor): (K, 4) normalised ``(cx, cy, w, h)`` relative to
            ``img_shape``.
        meta (dict): ``img_shape``; ``scale_factor`` and ``ori_shape`` to
            rescale.
        rescale (bool): to the original image.

    Returns:
        Tensor: (K, 4) xyxy pixels.
    """
    h, w = meta['img_shape'][:2]
    boxes = _clamp(
        bbox_cxcywh_to_xyxy(boxes) * boxes.new_tensor([w, h, w, h]), h, w)
    if rescale and 'scale_factor' in meta:
        boxes = boxes / boxes.new_tensor(meta['scale_factor']).repeat(2)
        if 'ori_shape' in meta:
            boxes = _clamp(boxes, *meta['ori_shape'][:2])
    return boxes


def _clamp(boxes: Tensor, h: int, w: int) -> Tensor:
    """(K, 4) xyxy boxes clamped to an (h, w) image."""
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return boxes


def proposal_masks(masks: Tensor, keep: Tensor, meta: dict,
                   threshold: float, rescale: bool) -> List[Dict]:
    """The kept proposals' masks as COCO RLE of the output size.

    The grid is cropped to the cells that cover the image *before* the
    upsampling: upsampling the padded grid (as mmdet's Mask2Former
    post-processing does) blends the image's last pixels with padding
    cells, so a mask would depend on the batch the image came in. Each
    distinct proposal is upsampled once, alone and only in the window that
    can exceed the threshold (:class:`~.mask_paste.MaskPaster`): a large
    image costs one window of memory, not K full-size masks.

    Args:
        masks (Tensor): (O, H/4, W/4) mask logits on the padded grid.
        keep (Tensor): (K,) the kept proposals (indices into O, repeats
            allowed).
        meta (dict): ``img_shape``, ``batch_input_shape`` (default: four
            times the grid) and, to rescale, ``ori_shape``.
        threshold (float): on the sigmoid of the upsampled logits.
        rescale (bool): to the original image.

    Returns:
        list[dict]: K COCO RLE dicts (``size`` [H, W], ``counts`` bytes).
    """
    grid_h, grid_w = masks.shape[-2:]
    pad_shape = meta.get('batch_input_shape', (grid_h * 4, grid_w * 4))
    paster = MaskPaster((grid_h, grid_w), pad_shape, meta['img_shape'][:2],
                        output_shape(meta, rescale), threshold,
                        device=masks.device)
    rles: Dict[int, dict] = {}
    for p in keep.tolist():
        if p not in rles:
            rles[p] = paster.paste(masks[p])
    return [dict(rles[p]) for p in keep.tolist()]
