# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Text on images (captions, top-k labels, retrieved texts), drawn with
an mmengine :class:`~mmengine.visualization.Visualizer` (e.g. mmdet's
``DetLocalVisualizer``, which draws the boxes and masks)."""
import textwrap
from typing import Sequence

import numpy as np
from mmengine.visualization import Visualizer

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
