# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Text on images (captions, top-k labels, retrieved texts), drawn with
an mmengine :class:`~mmengine.visualization.Visualizer` (e.g. mmdet's
``DetLocalVisualizer``, which draws the boxes and masks), and the
instances such a visualizer can draw. Used by the inferencer and by
``tools/test.py --show-dir`` (:class:`~mmupv2.engine.hooks.
TaskVisualizationHook`)."""
import textwrap
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.visualization import Visualizer

from mmupv2.models.tasks.mask_paste import decode_rle_masks

#: Font sizes (points) of the text block, scaled with the image.
MIN_FONT_SIZE, MAX_FONT_SIZE = 6, 14
#: The box behind the text, as mmdet draws its labels.
TEXT_BOX = dict(facecolor='black', alpha=0.6, pad=0.5, edgecolor='none')


def printable(text: str) -> str:
    """``text`` with non-printable characters (a random model's byte-level
    tokens) shown as ``'?'``, so that matplotlib can draw it."""
    return ''.join(c if c.isprintable() else '?' for c in text)


def font_size_for(height: int, width: int) -> int:
    """A font size (points) that fits a few lines on an image of this
    size: ``min(H, W) / 32`` clipped to [6, 14]."""
    return int(np.clip(min(height, width) / 32, MIN_FONT_SIZE, MAX_FONT_SIZE))


def draw_text_block(visualizer: Visualizer, image: np.ndarray,
                    lines: Sequence[str]) -> np.ndarray:
    """Draw lines of text in the top-left corner of an image.

    Long lines are wrapped to the image width.

    Args:
        visualizer: draws the text (its current image is replaced).
        image (np.ndarray): (H, W, 3) RGB uint8.
        lines: the texts, one per line.

    Returns:
        np.ndarray: (H, W, 3) RGB uint8, the drawn image.
    """
    height, width = image.shape[:2]
    font_size = font_size_for(height, width)
    # ~0.6 em per character; 1 pt is dpi / 72 pixels
    px_per_char = 0.6 * font_size * visualizer.dpi / 72
    chars = max(8, int((width - 4) / px_per_char))
    wrapped = [
        part for line in lines
        for part in (textwrap.wrap(printable(line), chars) or [''])
    ]
    visualizer.set_image(image)
    if wrapped:
        visualizer.draw_texts(
            '\n'.join(wrapped),
            positions=np.array([[2, 2]]),
            font_sizes=font_size,
            colors='white',
            vertical_alignments='top',
            bboxes=[TEXT_BOX])
    return visualizer.get_image()


def drawable_instances(sample, pred_score_thr: float,
                       shape: Tuple[int, int]):
    """The sample to hand to ``DetLocalVisualizer.add_datasample``: its
    ``pred_instances`` scoring above ``pred_score_thr``, with COCO RLE masks
    decoded to (n, H, W) bool as mmdet's visualizer takes them (only these
    are pasted at full size). A sample without RLE masks is returned as it
    is.

    Args:
        sample (UPv2DataSample): with ``pred_instances``.
        pred_score_thr: instances scoring at most this are left out.
        shape: (H, W) of the image (for an empty mask list).
    """
    instances = sample.pred_instances
    if 'masks' not in instances or not isinstance(instances.masks, list):
        return sample
    keep = instances[instances.scores > pred_score_thr]
    keep.masks = decode_rle_masks(keep.masks, shape)
    drawable = sample.clone()
    drawable.pred_instances = keep
    return drawable


def topk_lines(scores: torch.Tensor,
               classes: Optional[Sequence[str]],
               topk: int = 3) -> List[str]:
    """``'name: score'`` lines of the ``topk`` best classes.

    Args:
        scores: (C,) class scores.
        classes: C names (None or too short: the indices are shown).
        topk: how many lines.
    """
    scores = torch.as_tensor(scores).flatten().float()
    values, indices = scores.topk(min(topk, scores.numel()))
    names = list(classes or [])
    return [
        f'{names[i] if i < len(names) else i}: {float(v):.2f}'
        for v, i in zip(values.tolist(), indices.tolist())
    ]
