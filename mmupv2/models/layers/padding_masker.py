# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Keep the batch padding out of a CNN's features.

mmdet pads the images of a batch at the bottom and right to a common size.
A convolutional backbone and neck then see those padded pixels: a 3x3 conv
or a max-pool at an image's border reads its padded neighbours (which are
not zero after the first conv + norm + activation), and a GroupNorm takes
its statistics over the whole padded map. So an image's features, and
everything built from them, change with the size of the largest image in
its batch (measured on the tiny encoder: neck outputs moved by up to 2.7,
the stem's max-pool output by 0.36).

:class:`PaddingMasker` removes that dependence without touching the
networks' code. It hooks, once, every module of a given tree that mixes
positions:

- ``nn.Conv2d`` with a kernel larger than 1x1 and ``nn.AvgPool2d``: the
  padding of their input is set to 0 -- what the conv's own zero padding
  gives at the border of an image that is alone;
- ``nn.MaxPool2d``: the padding is set to ``-inf`` -- the pool's own
  implicit padding;
- ``nn.GroupNorm``: mean and variance are taken over the image's own
  positions only.

A bilinear upsampling reads one row / column beyond an image's last one;
:func:`replicate_padding` fills the padding with the image's border values
first, which is what the upsampling's clamping gives an image that is
alone (the proposal network's mask branch uses it).

A position of a stride-``s`` map is padding when it lies at or beyond
``ceil(img_h / s)`` (rows; columns alike; :func:`valid_sizes`). With the
data preprocessor's ``pad_size_divisor=32`` (every config), so that every
map up to stride 32 has exactly ``H / s`` rows, an image's features are,
up to float rounding, the same alone as in any larger batch. Outside
:meth:`PaddingMasker.images`, or when no image of the batch is padded, the
hooks do nothing.

What this does not cover: a backbone whose layers mix positions through
other modules (Swin's window attention over padded patches,
``F.max_pool2d`` called as a function), and BatchNorm *in training mode*,
whose batch statistics are batch-dependent by design.
"""
import math
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor


class PaddingMasker:
    """Hooks that keep the batch padding out of every position-mixing
    module of ``root`` (see the module docstring).

    Args:
        root (nn.Module): the module tree to hook (e.g. the backbone, the
            neck and the proposal network's mask branch).

    Example:
        >>> masker = PaddingMasker(encoder)
        >>> with masker.images([(64, 96), (128, 128)], (128, 128)):
        ...     feats = encoder.neck(encoder.backbone(inputs))
    """

    def __init__(self, root: nn.Module) -> None:
        self._img_shapes: Optional[List[Tuple[int, int]]] = None
        self._batch_shape: Optional[Tuple[int, int]] = None
        self._valid: Dict[Tuple[int, int, str], Tensor] = {}
        self.num_hooked = 0
        for module in root.modules():
            if isinstance(module, nn.GroupNorm):
                module.register_forward_hook(self._group_norm_hook)
            elif isinstance(module, nn.MaxPool2d):
                module.register_forward_pre_hook(self._max_pool_hook)
                module.register_forward_hook(self._zero_output_hook)
            elif isinstance(module, nn.AvgPool2d) or (
                    isinstance(module, nn.Conv2d)
                    and tuple(module.kernel_size) != (1, 1)):
                module.register_forward_pre_hook(self._zero_hook)
            else:
                continue
            self.num_hooked += 1

    @contextmanager
    def images(self, img_shapes: Sequence[Sequence[int]],
               batch_shape: Sequence[int]) -> Iterator[None]:
        """Mask the padding of these images while the block runs.

        Args:
            img_shapes (Sequence[Sequence[int]]): B unpadded (h, w).
            batch_shape (Sequence[int]): the padded (H, W) of the batch.
        """
        shapes = [(int(s[0]), int(s[1])) for s in img_shapes]
        batch = (int(batch_shape[0]), int(batch_shape[1]))
        padded = any(s != batch for s in shapes)
        self._img_shapes = shapes if padded else None
        self._batch_shape = batch
        self._valid = {}
        try:
            yield
        finally:
            self._img_shapes = None
            self._valid = {}

    def valid_mask(self, x: Tensor) -> Optional[Tensor]:
        """(B, 1, h, w) bool, True inside each image, for a (B, C, h, w)
        map of the current batch; None outside :meth:`images` or when no
        image is padded."""
        if self._img_shapes is None or x.dim() != 4 or x.shape[0] != len(
                self._img_shapes):
            return None
        h, w = x.shape[-2:]
        key = (h, w, str(x.device))
        if key not in self._valid:
            self._valid[key] = ~padding_masks(
                self._img_shapes, self._batch_shape, (h, w),
                x.device)[:, None]
        return self._valid[key]

    def _zero_hook(self, module: nn.Module, args: tuple) -> Optional[tuple]:
        valid = self.valid_mask(args[0])
        if valid is None:
            return None
        return (args[0].masked_fill(~valid, 0.), ) + tuple(args[1:])

    def _max_pool_hook(self, module: nn.Module,
                       args: tuple) -> Optional[tuple]:
        valid = self.valid_mask(args[0])
        if valid is None:
            return None
        return (args[0].masked_fill(~valid, float('-inf')), ) + tuple(
            args[1:])

    def _zero_output_hook(self, module: nn.Module, args: tuple,
                          output: Tensor) -> Optional[Tensor]:
        # a window of padding only gives -inf: 0 keeps it finite downstream
        valid = self.valid_mask(output)
        return None if valid is None else output.masked_fill(~valid, 0.)

    def _group_norm_hook(self, module: nn.GroupNorm, args: tuple,
                         output: Tensor) -> Optional[Tensor]:
        x = args[0]
        valid = self.valid_mask(x)
        if valid is None:
            return None
        return masked_group_norm(x, valid, module)


def valid_sizes(img_shapes: Sequence[Sequence[int]],
                batch_shape: Sequence[int],
                size: Sequence[int]) -> List[Tuple[int, int]]:
    """Each image's (rows, columns) on a map of ``size`` made from the
    padded batch.

    The map's stride ``s`` is the smallest power of two with
    ``ceil(H / s) == h`` (and the same for the width) -- how a CNN's
    stride-2 layers shrink a map -- and an image of ``img_h`` rows covers
    ``ceil(img_h / s)`` of them. A stride-64 map of a 96-pixel batch has 2
    rows, and a 64-pixel image 1 of them: the nearest-neighbour resize of
    the pixel mask (mmdet's DETRs) says 2, and the image alone (padded to
    64 pixels) has 1. When no power of two fits (e.g. a ViT's stride 14),
    the ratio ``ceil(img_h * h / H)`` is used.

    Args:
        img_shapes (Sequence[Sequence[int]]): B unpadded (h, w) in pixels.
        batch_shape (Sequence[int]): the padded (H, W).
        size (Sequence[int]): (h', w') of the map.

    Returns:
        list[tuple[int, int]]: B (rows, columns).
    """
    strides = [_power_of_two_stride(int(batch_shape[i]), int(size[i]))
               for i in (0, 1)]
    out = []
    for shape in img_shapes:
        out.append(tuple(
            math.ceil(int(shape[i]) / strides[i]) if strides[i] else
            math.ceil(int(shape[i]) * int(size[i]) / int(batch_shape[i]))
            for i in (0, 1)))
    return out


def padding_masks(img_shapes: Sequence[Sequence[int]],
                  batch_shape: Sequence[int], size: Sequence[int],
                  device: torch.device) -> Tensor:
    """(B, h, w) bool, True = padding, on a map of ``size`` (see
    :func:`valid_sizes`)."""
    masks = torch.ones(len(img_shapes), int(size[0]), int(size[1]),
                       dtype=torch.bool, device=device)
    for mask, (rows, cols) in zip(
            masks, valid_sizes(img_shapes, batch_shape, size)):
        mask[:rows, :cols] = False
    return masks


def _power_of_two_stride(batch_len: int, map_len: int) -> Optional[int]:
    stride = 1
    while math.ceil(batch_len / stride) > map_len:
        stride *= 2
    return stride if math.ceil(batch_len / stride) == map_len else None


def replicate_padding(x: Tensor, sizes: Sequence[Tuple[int, int]]) -> Tensor:
    """Fill each image's padding with its last valid row / column.

    Args:
        x (Tensor): (B, C, h, w) a map of a padded batch.
        sizes (Sequence[tuple[int, int]]): B valid (rows, columns), e.g.
            from :func:`valid_sizes`.

    Returns:
        Tensor: (B, C, h, w), ``x`` where nothing is padded (the same
        object when no image is).
    """
    h, w = x.shape[-2:]
    if all((vh, vw) == (h, w) for vh, vw in sizes):
        return x
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    out = []
    for img, (vh, vw) in zip(x, sizes):
        img = img.index_select(1, rows.clamp(max=max(vh, 1) - 1))
        out.append(img.index_select(2, cols.clamp(max=max(vw, 1) - 1)))
    return torch.stack(out)


def masked_group_norm(x: Tensor, valid: Tensor, norm: nn.GroupNorm) -> Tensor:
    """GroupNorm whose statistics come from the valid positions only.

    Args:
        x (Tensor): (B, C, h, w).
        valid (Tensor): (B, 1, h, w) bool, True where a position counts.
        norm (nn.GroupNorm): gives the groups, eps and affine parameters.

    Returns:
        Tensor: (B, C, h, w); equal to ``norm(x)`` where every position is
        valid.
    """
    b, c, h, w = x.shape
    groups = norm.num_groups
    xg = x.reshape(b, groups, c // groups, h * w)
    keep = valid.reshape(b, 1, 1, h * w)
    count = keep.sum(dim=-1, keepdim=True).clamp(min=1) * (c // groups)
    xg = xg.masked_fill(~keep, 0.)
    mean = xg.sum(dim=(-2, -1), keepdim=True) / count
    centred = (xg - mean).masked_fill(~keep, 0.)
    var = centred.pow(2).sum(dim=(-2, -1), keepdim=True) / count
    out = (centred / torch.sqrt(var + norm.eps)).reshape(b, c, h, w)
    if norm.affine:
        out = out * norm.weight.view(1, c, 1, 1) + norm.bias.view(1, c, 1, 1)
    return out


__all__ = [
    'PaddingMasker', 'masked_group_norm', 'padding_masks',
    'replicate_padding', 'valid_sizes'
]
