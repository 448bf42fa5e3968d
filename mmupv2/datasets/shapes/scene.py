# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Random scenes of coloured shapes, drawn with exact instance masks.

A scene is 1-4 objects, each a (shape, colour, size, position) drawn over a
textured, noisy background. Objects may overlap; later objects occlude
earlier ones and every object keeps at least ``MIN_VISIBLE`` of its area
visible, so its mask, box and caption stay meaningful. The largest size
category occurs exactly once per scene, so "the shape of the largest object"
(the classification label) is well defined.

    layout_scene: sizes, kinds, colours, outlines and places ─► objects
        (visible masks, boxes, position words; no pixels)
    draw_scene:   layout_scene ─► background ─► each object painted in its
        colour (a style with textures: modulated by a texture) ─► noise

:mod:`.photo_scene` paints the same layouts with crops of photographs.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .styles import SHAPES_STYLE, STYLES, ShapesStyle

#: The built-in benchmark's vocabulary (see :mod:`.styles` for others).
SHAPES = SHAPES_STYLE.shapes
COLOURS = SHAPES_STYLE.colours
SIZES = SHAPES_STYLE.sizes
POSITIONS = SHAPES_STYLE.positions
#: Every shape :func:`shape_mask` draws: those of every style.
DRAWABLE_SHAPES = tuple(
    dict.fromkeys(shape for style in STYLES.values()
                  for shape in style.shapes))
#: The fill textures of :func:`texture_pattern`.
TEXTURES = ('plain', 'stripes', 'checks', 'dots')
#: Minimum visible fraction of each object after occlusion.
MIN_VISIBLE = 0.5


@dataclass
class SceneObject:
    """One drawn object.

    Attributes:
        shape (str): one of the style's shapes (:data:`SHAPES`).
        colour (str): one of the style's colours (:data:`COLOURS`).
        size (str): one of the style's sizes (:data:`SIZES`).
        mask (np.ndarray): (H, W) bool, the *visible* pixels.
        bbox (list[int]): COCO ``[x, y, w, h]`` of the visible pixels.
        position (str): grid word of the box centre, see :data:`POSITIONS`.
        full_bbox (list[int]): COCO ``[x, y, w, h]`` of the whole
            (unoccluded) object; what a painter fits a picture to.
    """
    shape: str
    colour: str
    size: str
    mask: np.ndarray
    bbox: List[int]
    position: str
    full_bbox: Optional[List[int]] = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _regular_polygon(cx: float, cy: float, r: float, n: int,
                     rot: float) -> np.ndarray:
    angles = rot + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)


def _star(cx: float, cy: float, r: float, rot: float) -> np.ndarray:
    angles = rot - math.pi / 2 + np.arange(10) * math.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    return np.stack(
        [cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)


def _rotated(points, rot: float, cx: float, cy: float) -> np.ndarray:
    """``points`` (N, 2) around the origin, rotated by ``rot`` and moved to
    (cx, cy)."""
    c, s = math.cos(rot), math.sin(rot)
    return np.asarray(points) @ np.array([[c, s], [-s, c]]) + np.array(
        [cx, cy])


def _cross(cx: float, cy: float, r: float, rot: float) -> np.ndarray:
    a, b = r, 0.35 * r
    return _rotated([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b),
                     (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)],
                    rot, cx, cy)


def _other_shape(canvas: np.ndarray, shape: str, cx: float, cy: float,
                 r: float, rot: float) -> None:
    """Draw a shape of the other styles (:mod:`.styles`) into ``canvas``."""
    centre, deg = (round(cx), round(cy)), math.degrees(rot)
    if shape == 'ellipse':
        cv2.ellipse(canvas, centre, (round(r), round(0.55 * r)), deg, 0, 360,
                    1, -1)
        return
    if shape == 'crescent':
        cv2.circle(canvas, centre, round(r), 1, -1)
        cv2.circle(canvas, (round(cx + 0.5 * r), round(cy - 0.2 * r)),
                   round(0.8 * r), 0, -1)
        return
    if shape == 'semicircle':
        cv2.ellipse(canvas, (round(cx), round(cy + 0.4 * r)),
                    (round(r), round(r)), deg, 180, 360, 1, -1)
        return
    if shape in ('pentagon', 'hexagon', 'octagon'):
        n = {'pentagon': 5, 'hexagon': 6, 'octagon': 8}[shape]
        angles = rot - math.pi / 2 + np.arange(n) * 2 * math.pi / n
        poly = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
    elif shape == 'arrow':
        poly = _rotated([(-r, -0.25 * r), (0.1 * r, -0.25 * r),
                         (0.1 * r, -0.7 * r), (r, 0), (0.1 * r, 0.7 * r),
                         (0.1 * r, 0.25 * r), (-r, 0.25 * r)], rot, cx, cy)
    elif shape == 'rectangle':
        poly = _rotated([(-r, -0.5 * r), (r, -0.5 * r), (r, 0.5 * r),
                         (-r, 0.5 * r)], rot, cx, cy)
    elif shape == 'trapezoid':
        poly = _rotated([(-0.5 * r, -0.6 * r), (0.5 * r, -0.6 * r),
                         (r, 0.6 * r), (-r, 0.6 * r)], rot, cx, cy)
    else:
        raise ValueError(
            f'unknown shape {shape!r}; expected one of {DRAWABLE_SHAPES}')
    cv2.fillPoly(canvas, [np.round(poly).astype(np.int32)], 1)


def shape_mask(shape: str, cx: float, cy: float, r: float, rot: float,
               size: int) -> np.ndarray:
    """Rasterise one shape of circumradius ``r`` centred at (cx, cy).

    Returns:
        np.ndarray: (size, size) bool mask of the full (unoccluded) shape.
    """
    canvas = np.zeros((size, size), np.uint8)
    if shape in ('circle', 'ring'):
        cv2.circle(canvas, (round(cx), round(cy)), round(r), 1, -1)
        if shape == 'ring':
            cv2.circle(canvas, (round(cx), round(cy)), round(0.55 * r), 0, -1)
        return canvas.astype(bool)
    if shape == 'square':
        poly = _regular_polygon(cx, cy, r, 4, math.pi / 4)
    elif shape == 'diamond':
        poly = _regular_polygon(cx, cy, r, 4, 0.0)
    elif shape == 'triangle':
        poly = _regular_polygon(cx, cy + 0.2 * r, 1.15 * r, 3,
                                -math.pi / 2 + rot)
    elif shape == 'star':
        poly = _star(cx, cy, 1.1 * r, rot)
    elif shape == 'cross':
        poly = _cross(cx, cy, r, rot)
    else:
        _other_shape(canvas, shape, cx, cy, r, rot)
        return canvas.astype(bool)
    cv2.fillPoly(canvas, [np.round(poly).astype(np.int32)], 1)
    return canvas.astype(bool)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted gradient with blotches and stripes: (size, size, 3) float."""
    base = rng.uniform(70, 160, size=3)
    tilt = rng.uniform(-40, 40, size=(2, 3))
    ys, xs = np.mgrid[0:size, 0:size] / size
    img = base + xs[..., None] * tilt[0] + ys[..., None] * tilt[1]
    for _ in range(rng.integers(3, 7)):  # soft blotches
        cx, cy = rng.uniform(0, size, 2)
        rad = rng.uniform(0.1, 0.4) * size
        weight = np.exp(-((xs * size - cx)**2 + (ys * size - cy)**2) /
                        (2 * rad**2))
        img += weight[..., None] * rng.uniform(-35, 35, size=3)
    for _ in range(rng.integers(2, 6)):  # thin stripes, shape-like clutter
        p0 = tuple(int(v) for v in rng.integers(0, size, 2))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(float(v) for v in base + rng.uniform(-45, 45, 3))
        cv2.line(img, p0, p1, colour, int(rng.integers(1, 3)))
    return img


def _position_word(bbox: List[int], size: int,
                   positions: Tuple[Tuple[str, ...], ...]) -> str:
    x, y, w, h = bbox
    col = min(int((x + w / 2) / size * 3), 2)
    row = min(int((y + h / 2) / size * 3), 2)
    return positions[row][col]


def _sample_sizes(rng: np.random.Generator, n: int,
                  sizes: Dict[str, float]) -> List[str]:
    """``n`` size names in which the largest category occurs exactly once."""
    names = list(sizes)
    top = int(rng.integers(0, len(names))) if n == 1 else int(
        rng.integers(1, len(names)))
    rest = [names[int(rng.integers(0, top))] for _ in range(n - 1)]
    return [names[top]] + rest


def _keeps_visible(full_masks: List[np.ndarray]) -> bool:
    """Whether every mask keeps ``MIN_VISIBLE`` of its area once the masks
    after it (drawn on top) are removed."""
    covered = np.zeros_like(full_masks[0])
    for full in reversed(full_masks):
        if (full & ~covered).sum() < MIN_VISIBLE * full.sum():
            return False
        covered |= full
    return True


def _box(mask: np.ndarray) -> List[int]:
    """COCO ``[x, y, w, h]`` of the pixels of a non-empty mask."""
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()),
            int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def layout_scene(rng: np.random.Generator, size: int = 160,
                 max_tries: int = 50, style: ShapesStyle = SHAPES_STYLE,
                 outlines: Optional[Sequence[str]] = None
                 ) -> List[SceneObject]:
    """Choose a scene's objects and where they lie; draw no pixel.

    Args:
        rng: the generator that fixes everything random in the scene.
        size: image side in pixels.
        max_tries: placement attempts per object before the scene is
            redrawn with fewer objects.
        style: the kinds (``style.shapes``), colours and sizes to draw from.
        outlines: ``None``: each object's outline is its kind (a shape);
            else the outline is drawn from these shapes, apart from the kind
            (photo crops cut to a shape: the outline tells nothing of the
            class).

    Returns:
        list[SceneObject]: in drawing order (later ones on top), largest
        first in size category, with visible masks and boxes.
    """
    num = int(rng.integers(1, 5))
    while True:
        sizes = _sample_sizes(rng, num, style.sizes)
        placed: List[Tuple[str, str, str, np.ndarray]] = []
        for size_name in sizes:
            for _ in range(max_tries):
                shape = style.shapes[int(rng.integers(0, len(style.shapes)))]
                colour = list(style.colours)[int(
                    rng.integers(0, len(style.colours)))]
                outline = shape if outlines is None else outlines[int(
                    rng.integers(0, len(outlines)))]
                r = style.sizes[size_name] * size * rng.uniform(0.9, 1.1)
                margin = 1.15 * r + 1
                cx, cy = rng.uniform(margin, size - margin, 2)
                full = shape_mask(outline, cx, cy, r,
                                  rng.uniform(-0.35, 0.35), size)
                if _keeps_visible([p[3] for p in placed] + [full]):
                    placed.append((shape, colour, size_name, full))
                    break
            else:
                break
        if len(placed) == num:
            break
        num -= 1  # crowded: try again with one object fewer

    objects = []
    covered = np.zeros((size, size), bool)
    for shape, colour, size_name, full in reversed(placed):
        visible = full & ~covered  # later (top) objects come first here
        covered |= full
        bbox = _box(visible)
        objects.append(
            SceneObject(shape, colour, size_name, visible, bbox,
                        _position_word(bbox, size, style.positions),
                        _box(full)))
    objects.reverse()
    return objects


def texture_pattern(rng: np.random.Generator, texture: str,
                    size: int) -> np.ndarray:
    """A brightness modulation in ``[-1, 1]`` over the whole image:
    ``'plain'`` (none), ``'stripes'`` (a sine wave at a random angle),
    ``'checks'`` or ``'dots'`` (period 4-8 pixels, random phase).

    Returns:
        np.ndarray: (size, size) float.
    """
    if texture == 'plain':
        return np.zeros((size, size))
    period = rng.uniform(4.0, 8.0)
    angle = rng.uniform(0, math.pi)
    phase = rng.uniform(0, 2 * math.pi, 2)
    ys, xs = np.mgrid[0:size, 0:size].astype(float)
    u = (xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period
    v = (-xs * math.sin(angle) + ys * math.cos(angle)) * 2 * math.pi / period
    if texture == 'stripes':
        return np.sin(u + phase[0])
    if texture == 'checks':
        return np.sign(np.sin(u + phase[0]) * np.sin(v + phase[1]))
    if texture == 'dots':
        return np.where(
            np.cos(u + phase[0]) * np.cos(v + phase[1]) > 0.5, 1.0, -0.4)
    raise ValueError(f'unknown texture {texture!r}; expected one of '
                     f'{TEXTURES}')


def draw_scene(rng: np.random.Generator, size: int = 160,
               max_tries: int = 50, style: ShapesStyle = SHAPES_STYLE
               ) -> Tuple[np.ndarray, List[SceneObject]]:
    """Draw one scene.

    Args:
        rng: the generator that fixes everything random in the scene.
        size: image side in pixels.
        max_tries: placement attempts per object before the scene is redrawn
            with fewer objects.
        style: the shapes, colours, words (and textures) to draw from.

    Returns:
        tuple: the RGB image, (size, size, 3) uint8, and its objects in
        drawing order (later ones on top), largest first in size category.
    """
    objects = layout_scene(rng, size, max_tries, style)
    img = _background(rng, size)
    for obj in reversed(objects):  # the visible masks are disjoint
        rgb = np.array(style.colours[obj.colour], float) + rng.uniform(
            -20, 20, 3)
        if style.textures:
            texture = style.textures[int(rng.integers(0, len(
                style.textures)))]
            shade = 1 + 0.3 * texture_pattern(rng, texture, size)[obj.mask]
            img[obj.mask] = rgb * shade[:, None]
        else:
            img[obj.mask] = rgb
    img += rng.normal(0, 8, img.shape)  # sensor noise over everything
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects
