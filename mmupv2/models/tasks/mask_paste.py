# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Proposal masks at the original image size, one instance at a time, as
COCO run-length encodings (RLE).

The proposal network predicts mask logits on the stride-4 grid of the
padded batch. Upsampling the N kept masks of an image to its original size
at once costs ``N x H x W`` floats (a 4000x4000 photo with 100 results:
6.4 GB). Here each mask is upsampled and thresholded alone, only inside the
window of output pixels that can exceed the threshold, and stored as COCO
RLE (what mmdet's ``CocoMetric`` and ``DetInferencer`` consume): the peak
memory is one window, and a small object costs a small window.

::

    logits (h', w') on the cells covering the image
      --rows: taps (H, 4)--> --cols: taps (W, 4)-->   (only the window
      rows/cols whose taps touch a cell above the threshold)
      --> > logit(threshold) --> window (h_w, w_w) bool --> RLE of (H, W)

The resampling is the composition of the two bilinear interpolations
(``align_corners=False``) of the former dense code: the cell grid to the
padded-input pixels, cropped to the image (``img_shape``), then to
``ori_shape``; both are separable, so each is a 1-D operator with two taps
per output pixel and their composition has four (:class:`Taps`). A
bilinear value is a convex combination of its taps, so a pixel whose taps
all fall on cells at or below the threshold stays below it: the window
holds every foreground pixel.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from torch import Tensor

#: Output rows resampled at once (bounds the float temporaries of a window
#: to ``ROW_CHUNK x W`` values).
ROW_CHUNK = 512


@dataclass
class Taps:
    """A 1-D linear resampling ``out[i] = sum_k weight[i, k] *
    in[index[i, k]]``.

    Attributes:
        index (Tensor): (n_out, K) long, input positions.
        weight (Tensor): (n_out, K) float, their weights (>= 0, summing to
            one per output).
    """
    index: Tensor
    weight: Tensor

    def __len__(self) -> int:
        return self.index.shape[0]


def bilinear_taps(in_size: int, out_size: int,
                  device: torch.device = None) -> Taps:
    """The taps of 1-D linear interpolation from ``in_size`` to
    ``out_size`` samples, as ``F.interpolate(mode='bilinear',
    align_corners=False)`` along one axis (source position
    ``max((i + 0.5) * in / out - 0.5, 0)``).

    Returns:
        Taps: (out_size, 2).
    """
    pos = (torch.arange(out_size, dtype=torch.float64, device=device) +
           0.5) * (in_size / out_size) - 0.5
    pos = pos.clamp(min=0)
    low = pos.floor().long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    frac = (pos - low).clamp(0, 1)
    index = torch.stack([low, high], -1)
    weight = torch.stack([1 - frac, frac], -1).float()
    return Taps(index, weight)


def compose(outer: Taps, inner: Taps) -> Taps:
    """``outer`` after ``inner``: (n_out, K_o) over (n_mid, K_i) ->
    (n_out, K_o * K_i) taps into the input of ``inner``."""
    index = inner.index[outer.index]  # (n_out, K_o, K_i)
    weight = outer.weight[..., None] * inner.weight[outer.index]
    return Taps(index.flatten(1), weight.flatten(1))


def _support(taps: Taps, in_size: int) -> Tuple[Tensor, Tensor]:
    """First and last output (inclusive) that has input ``j`` as a tap of
    positive weight, for every ``j``: two (in_size,) long tensors (an input
    no output uses gets ``first > last``)."""
    n_out = len(taps)
    outputs = torch.arange(n_out, device=taps.index.device)[:, None]
    outputs = outputs.expand_as(taps.index)
    used = taps.weight > 0
    first = torch.full((in_size, ), n_out, dtype=torch.long,
                       device=taps.index.device)
    last = torch.full_like(first, -1)
    first = first.scatter_reduce(0, taps.index[used], outputs[used], 'amin')
    last = last.scatter_reduce(0, taps.index[used], outputs[used], 'amax')
    return first, last


def window_to_rle(window: np.ndarray, top: int, left: int, height: int,
                  width: int) -> Dict:
    """COCO RLE of an (height, width) mask that is ``window`` at
    ``[top:top + h_w, left:left + w_w]`` and zero elsewhere, without
    building the full mask.

    COCO RLE counts alternate runs of 0 and 1 in column-major order,
    starting with 0. The run boundaries are the vertical transitions of
    each window column, offset to the full image; a run that ends at the
    bottom of a column and goes on at the top of the next one is merged.

    Args:
        window (np.ndarray): (h_w, w_w) bool.
        top, left: the window's position.
        height, width: the mask's size.

    Returns:
        dict: ``size`` [height, width] and ``counts`` (bytes), as
        ``pycocotools.mask.encode`` gives.
    """
    win_h, win_w = window.shape
    padded = np.zeros((win_w, win_h + 2), dtype=np.int8)
    padded[:, 1:-1] = window.T
    steps = np.diff(padded, axis=1)  # (w_w, h_w + 1), column by column
    cols, rows = np.nonzero(steps)  # ordered by column, then row
    bounds = (left + cols).astype(np.int64) * height + top + rows
    if bounds.size:
        joined = np.flatnonzero(bounds[1:] == bounds[:-1])
        bounds = np.delete(bounds, np.concatenate([joined, joined + 1]))
    counts = np.diff(np.concatenate([[0], bounds, [height * width]]))
    if counts.size > 1 and counts[-1] == 0:  # the mask ends with a run of 1
        counts = counts[:-1]
    return mask_util.frPyObjects(
        dict(size=[height, width], counts=counts.tolist()), height, width)


class MaskPaster:
    """Upsample the proposal masks of one image to its output size, one
    instance at a time, as COCO RLE (see the module docstring).

    Args:
        grid_shape: (h', w') of the mask grid of the padded batch.
        pad_shape: (H_pad, W_pad) of the padded batch
            (``batch_input_shape``).
        img_shape: (h, w) of the image in the batch (before padding).
        out_shape: (H, W) of the output masks (``ori_shape`` to rescale,
            else ``img_shape``).
        threshold: mask probability threshold (on the sigmoid).
    """

    def __init__(self, grid_shape: Sequence[int], pad_shape: Sequence[int],
                 img_shape: Sequence[int], out_shape: Sequence[int],
                 threshold: float, device: torch.device = None) -> None:
        self.out_shape = (int(out_shape[0]), int(out_shape[1]))
        self.cells = []
        self.taps: List[Taps] = []
        self.support: List[Tuple[Tensor, Tensor]] = []
        for axis in range(2):
            grid, pad = grid_shape[axis], pad_shape[axis]
            size, out = int(img_shape[axis]), self.out_shape[axis]
            stride = pad / grid
            cells = min(math.ceil(size / stride), grid)
            taps = bilinear_taps(cells, round(cells * stride), device)
            taps = Taps(taps.index[:size], taps.weight[:size])
            if out != size:
                taps = compose(bilinear_taps(size, out, device), taps)
            self.cells.append(cells)
            self.taps.append(taps)
            self.support.append(_support(taps, cells))
        if threshold <= 0:
            self.logit_threshold = -math.inf
        elif threshold >= 1:
            self.logit_threshold = math.inf
        else:
            self.logit_threshold = math.log(threshold / (1 - threshold))

    def _window(self, axis: int, active: Tensor) -> Tuple[int, int]:
        """Output range [start, stop) whose taps reach an active cell."""
        first, last = self.support[axis]
        return int(first[active].min()), int(last[active].max()) + 1

    def paste(self, logits: Tensor) -> Dict:
        """One mask.

        Args:
            logits (Tensor): (h', w') mask logits on the padded grid.

        Returns:
            dict: COCO RLE of the (H, W) mask ``sigmoid(upsampled logits)
            > threshold``.
        """
        height, width = self.out_shape
        logits = logits[:self.cells[0], :self.cells[1]].float()
        active = logits > self.logit_threshold
        rows, cols = active.any(1), active.any(0)
        empty = window_to_rle(np.zeros((0, 0), bool), 0, 0, height, width)
        if not bool(rows.any()):
            return empty
        top, bottom = self._window(0, rows)
        left, right = self._window(1, cols)
        if top >= bottom or left >= right:  # no output reaches them
            return empty
        row_taps, col_taps = self.taps
        # columns first: (h', W_w), then the rows of the window in chunks
        col_index = col_taps.index[left:right]
        col_weight = col_taps.weight[left:right]
        by_cols = sum(col_weight[:, k] * logits[:, col_index[:, k]]
                      for k in range(col_index.shape[1]))
        chunks = []
        for start in range(top, bottom, ROW_CHUNK):
            stop = min(start + ROW_CHUNK, bottom)
            index = row_taps.index[start:stop]
            weight = row_taps.weight[start:stop]
            values = sum(weight[:, k, None] * by_cols[index[:, k]]
                         for k in range(index.shape[1]))
            chunks.append((values > self.logit_threshold).cpu().numpy())
        return window_to_rle(
            np.concatenate(chunks), top, left, height, width)


def decode_rle_masks(rles: Sequence[Dict],
                     shape: Sequence[int] = None) -> Tensor:
    """COCO RLE masks -> an (N, H, W) bool tensor (e.g. to draw them).

    Args:
        rles: N RLE dicts (``counts`` bytes or str).
        shape: (H, W) for an empty list.

    Returns:
        Tensor: (N, H, W) bool.
    """
    if not len(rles):
        height, width = shape if shape is not None else (0, 0)
        return torch.zeros((0, height, width), dtype=torch.bool)
    rles = [
        dict(rle, counts=rle['counts'].encode())
        if isinstance(rle['counts'], str) else rle for rle in rles
    ]
    masks = mask_util.decode(list(rles))  # (H, W, N) uint8
    return torch.from_numpy(masks).permute(2, 0, 1).bool()
