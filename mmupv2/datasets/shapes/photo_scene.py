# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Scenes of real photographs: items cut from the photographs that ship in
the scikit-image wheel (``skimage/data/``: read from the installed
package's files, nothing is downloaded), laid out as the shapes scenes are,
written in the same formats.

Each object is a crop of the photograph of its class (a random window of
the class's region, mirrored at random), tinted towards its colour, cut to
an outline drawn apart from the class (circle, ellipse, square, hexagon,
octagon: the outline tells nothing of the class) and pasted over a blurred,
dimmed crop of a photograph that is no class. Ten classes, several of them
alike: three grey surface textures (brick, gravel, grass), two grey
round-featured ones (coin, moon), and four objects (cat, cup, astronaut,
motorcycle) and a star field (galaxy) that the tint leaves only their
structure to tell apart.

    layout_scene(PHOTO_STYLE, outlines) ─► objects (masks, boxes, words)
    background photo (blurred, dimmed) ─► each object: crop of its photo,
        fitted to its full box, tinted, pasted on its visible pixels
        ─► sensor noise

Captions, labels and files are those of the shapes benchmark
(:func:`~.generator.write_scene_set`): "a large red cat and a small blue
coin", "a blue coin at the top left and ...", "two items: ...".
"""
import functools
import importlib.util
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .generator import write_scene_set
from .scene import SceneObject, layout_scene
from .styles import SHAPES_STYLE, ShapesStyle

Window = Tuple[int, int, int, int]  # x0, y0, x1, y1 in the photograph


@dataclass(frozen=True)
class PhotoSource:
    """Where the items of one class are cut from.

    Attributes:
        file: a file of ``skimage/data/``.
        windows: regions of the photograph that show the item (``x0, y0,
            x1, y1``); a crop lies inside one of them.
        zoom: the crop's side as a fraction of the window's shorter side,
            ``(low, high)``: near 1 for an object seen whole, small for a
            surface texture.
    """
    file: str
    windows: Tuple[Window, ...]
    zoom: Tuple[float, float]


def _coin_windows() -> Tuple[Window, ...]:
    """A window around each coin of ``coins.png`` (384 x 303; 4 rows of
    6 coins, centres and radii read off the photograph)."""
    centres = [
        (45, 55, 24), (100, 55, 22), (155, 50, 25), (215, 50, 25),
        (275, 52, 22), (335, 45, 30), (45, 125, 22), (103, 125, 21),
        (153, 127, 21), (205, 125, 22), (270, 120, 25), (335, 125, 21),
        (45, 197, 21), (103, 195, 23), (153, 197, 20), (212, 193, 25),
        (273, 195, 24), (347, 187, 32), (45, 262, 27), (113, 265, 23),
        (170, 262, 27), (245, 263, 25), (300, 262, 26), (355, 268, 24),
    ]
    return tuple((x - r - 3, y - r - 3, x + r + 3, y + r + 3)
                 for x, y, r in centres)


_WHOLE = (0, 0, 512, 512)
#: The ten classes, in label order.
PHOTO_SOURCES: Dict[str, PhotoSource] = {
    'cat': PhotoSource('chelsea.png', ((100, 0, 420, 300), ), (0.75, 1.0)),
    'cup': PhotoSource('coffee.png', ((140, 10, 450, 300), ), (0.8, 1.0)),
    'astronaut': PhotoSource('astronaut.png', ((140, 0, 330, 210), ),
                             (0.8, 1.0)),
    'motorcycle': PhotoSource('motorcycle_left.png', ((20, 160, 740, 490), ),
                              (0.7, 1.0)),
    'coin': PhotoSource('coins.png', _coin_windows(), (0.9, 1.0)),
    'moon': PhotoSource('moon.png', (_WHOLE, ), (0.2, 0.45)),
    'brick': PhotoSource('brick.png', (_WHOLE, ), (0.2, 0.45)),
    'gravel': PhotoSource('gravel.png', (_WHOLE, ), (0.2, 0.45)),
    'grass': PhotoSource('grass.png', (_WHOLE, ), (0.2, 0.45)),
    'galaxy': PhotoSource('hubble_deep_field.jpg', ((0, 0, 1000, 872), ),
                          (0.2, 0.45)),
}
#: Photographs of no class, for the backgrounds.
BACKGROUNDS = ('camera.png', 'ihc.png', 'rocket.jpg', 'retina.jpg',
               'cell.png')
#: The outlines items are cut to (drawn apart from the class).
OUTLINES = ('circle', 'ellipse', 'square', 'hexagon', 'octagon')
#: How much of a crop's own colours survive the tint.
KEEP_COLOUR = 0.3

#: The photo set's classes and words: the benchmark's colours, positions
#: and count words; items are larger than shapes (a crop needs pixels).
PHOTO_STYLE = ShapesStyle(
    name='photos',
    shapes=tuple(PHOTO_SOURCES),
    colours=SHAPES_STYLE.colours,
    sizes={'small': 0.1, 'medium': 0.14, 'large': 0.2},
    positions=SHAPES_STYLE.positions,
    numbers=SHAPES_STYLE.numbers,
    noun='item')


def photo_dir() -> str:
    """The ``skimage/data`` folder of the installed scikit-image.

    Raises:
        ModuleNotFoundError: scikit-image is not installed (says how).
    """
    spec = importlib.util.find_spec('skimage')
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            'the photo scenes are cut from the photographs in the '
            'scikit-image wheel: pip install scikit-image (see '
            'requirements/optional.txt)')
    return osp.join(list(spec.submodule_search_locations)[0], 'data')


@functools.cache
def load_photo(file: str) -> np.ndarray:
    """A photograph of ``skimage/data/`` as (H, W, 3) uint8 RGB (a grey
    one repeated over the channels).

    Raises:
        FileNotFoundError: the file is not in the installed wheel.
    """
    path = osp.join(photo_dir(), file)
    img = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, grey ones as 3 x grey
    if img is None:
        raise FileNotFoundError(
            f'{path}: not in the installed scikit-image (the photo scenes '
            f'need {sorted({s.file for s in PHOTO_SOURCES.values()})} and '
            f'{list(BACKGROUNDS)} from its wheel)')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _crop(rng: np.random.Generator, source: PhotoSource, width: int,
          height: int) -> np.ndarray:
    """A random crop of the class's photograph, resized to (height, width,
    3) float, mirrored half of the time."""
    photo = load_photo(source.file)
    x0, y0, x1, y1 = source.windows[int(rng.integers(0,
                                                     len(source.windows)))]
    side = rng.uniform(*source.zoom) * min(x1 - x0, y1 - y0)
    aspect = width / height
    w, h = (side, side / aspect) if aspect >= 1 else (side * aspect, side)
    w, h = min(w, x1 - x0), min(h, y1 - y0)
    left = x0 + rng.uniform(0, x1 - x0 - w)
    top = y0 + rng.uniform(0, y1 - y0 - h)
    crop = photo[int(top):int(top + h), int(left):int(left + w)]
    crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop.astype(float)


def _tint(crop: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """The crop's brightness in the colour ``rgb``, with
    :data:`KEEP_COLOUR` of its own colours."""
    grey = crop.mean(-1, keepdims=True)
    shade = grey / max(float(grey.mean()), 1.0)
    return KEEP_COLOUR * crop + (1 - KEEP_COLOUR) * np.clip(
        shade * rgb, 0, 255)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A blurred, dimmed crop of a photograph of no class: (size, size, 3)
    float."""
    photo = load_photo(BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))])
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.5, 1.0) * min(height, width))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    img = cv2.resize(photo[top:top + side, left:left + side], (size, size),
                     interpolation=cv2.INTER_AREA).astype(float)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    return 60 + 0.5 * img


def draw_photo_scene(rng: np.random.Generator, size: int = 160,
                     max_tries: int = 50,
                     style: ShapesStyle = PHOTO_STYLE
                     ) -> Tuple[np.ndarray, List[SceneObject]]:
    """Draw one scene of photo items (a drawer of
    :func:`~.generator.write_scene_set`).

    Returns:
        tuple: the RGB image, (size, size, 3) uint8, and its objects in
        drawing order (later ones on top), largest first in size category.
    """
    objects = layout_scene(rng, size, max_tries, style, outlines=OUTLINES)
    img = _background(rng, size)
    for obj in reversed(objects):  # the visible masks are disjoint
        x, y, w, h = obj.full_bbox
        rgb = np.array(style.colours[obj.colour], float) + rng.uniform(
            -20, 20, 3)
        item = _tint(_crop(rng, PHOTO_SOURCES[obj.shape], w, h), rgb)
        box = np.zeros((size, size, 3))
        box[y:y + h, x:x + w] = item
        img[obj.mask] = box[obj.mask]
    img += rng.normal(0, 4, img.shape)  # sensor noise over everything
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects


def generate_photo_scenes(
        out_dir: str,
        num_train: int = 2000,
        num_val: int = 200,
        seed: int = 0,
        img_size: int = 160,
        progress: Optional[Callable[[str, int, int], None]] = None) -> Dict:
    """Generate the photo-scene set into ``out_dir``: the files and formats
    of the shapes benchmark (:mod:`.generator`), ``meta.json`` with
    ``style='photos'``.

    Args:
        out_dir: output folder; created if missing, files overwritten.
        num_train / num_val: number of images per split (>= 1).
        seed: fixes every random choice.
        img_size: image side in pixels (>= 96).
        progress: called as ``progress(split, done, total)`` after each
            image.

    Returns:
        dict: the content of ``meta.json``.
    """
    if img_size < 96:
        raise ValueError(f'img_size must be >= 96 (a crop needs pixels), '
                         f'got {img_size}')
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train} and {num_val}')
    for file in {s.file for s in PHOTO_SOURCES.values()} | set(BACKGROUNDS):
        load_photo(file)  # fail before anything is written
    return write_scene_set(
        out_dir, PHOTO_STYLE, draw_photo_scene, num_train, num_val, seed,
        img_size, progress, description='mmupv2 photo scenes',
        supercategory='item', dataset_name='photos',
        meta=dict(style=PHOTO_STYLE.name,
                  photos='scikit-image ' + _skimage_version()))


def _skimage_version() -> str:
    from importlib.metadata import version
    return version('scikit-image')
