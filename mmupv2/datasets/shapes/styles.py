# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What a shapes set is made of: its classes, colours and words.

The built-in benchmark is :data:`SHAPES_STYLE`. :data:`OTHER_STYLE` draws
the same kind of scenes from other classes (eight instead of seven), other
colours and other size / position / count words; it exists to check that a
recipe tuned on the benchmark carries over to a data set it has never seen
(``tools/misc/generate_shapes.py --style other``, docs/custom_dataset.md).
:data:`CLOSE_STYLE` is the harder one: ten classes in groups that look
alike (circle / octagon / hexagon / pentagon, square / rectangle / diamond
/ trapezoid, ellipse / semicircle), each object filled with a random
texture that has nothing to do with its class (``--style close``).
"""
from dataclasses import dataclass
from typing import Dict, Tuple

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class ShapesStyle:
    """The vocabulary of a shapes set.

    Attributes:
        name (str): the style's name, written to ``meta.json``.
        shapes (tuple[str]): shape names; the classification classes and
            detection categories, in label order. Each must be drawable by
            :func:`~mmupv2.datasets.shapes.scene.shape_mask`.
        colours (dict[str, RGB]): colour name -> base RGB.
        sizes (dict[str, float]): size name -> radius as a fraction of the
            image side, smallest first.
        positions (tuple[tuple[str]]): 3x3 grid of position words, indexed
            ``[row][col]``; ``'center'``, ``'left'`` and ``'right'`` read
            "in the" / "on the", every other word "at the".
        numbers (tuple[str]): count words for 0..4 objects.
        textures (tuple[str]): fill textures drawn at random per object
            (names of :func:`~mmupv2.datasets.shapes.scene.texture_pattern`);
            empty: flat colours.
        noun (str): what the count caption calls one object ("two shapes:
            ...").
    """
    name: str
    shapes: Tuple[str, ...]
    colours: Dict[str, RGB]
    sizes: Dict[str, float]
    positions: Tuple[Tuple[str, str, str], ...]
    numbers: Tuple[str, ...]
    textures: Tuple[str, ...] = ()
    noun: str = 'shape'

    @property
    def size_rank(self) -> Dict[str, int]:
        """Size name -> rank, 0 for the largest."""
        return {name: len(self.sizes) - 1 - i
                for i, name in enumerate(self.sizes)}


#: The built-in "shapes" benchmark.
SHAPES_STYLE = ShapesStyle(
    name='shapes',
    shapes=('circle', 'square', 'triangle', 'diamond', 'star', 'cross',
            'ring'),
    colours={
        'red': (220, 40, 40),
        'green': (40, 180, 60),
        'blue': (40, 80, 220),
        'yellow': (235, 215, 40),
        'purple': (150, 60, 190),
        'orange': (245, 140, 30),
        'white': (245, 245, 245),
    },
    sizes={'small': 0.07, 'medium': 0.11, 'large': 0.16},
    positions=(('top left', 'top', 'top right'), ('left', 'center', 'right'),
               ('bottom left', 'bottom', 'bottom right')),
    numbers=('zero', 'one', 'two', 'three', 'four'))

#: Other classes, colours and words, for carry-over checks.
OTHER_STYLE = ShapesStyle(
    name='other',
    shapes=('pentagon', 'hexagon', 'ellipse', 'arrow', 'crescent',
            'semicircle', 'rectangle', 'trapezoid'),
    colours={
        'crimson': (200, 20, 60),
        'teal': (0, 128, 128),
        'navy': (20, 30, 120),
        'gold': (255, 200, 0),
        'magenta': (230, 0, 200),
        'lime': (150, 240, 60),
        'black': (20, 20, 20),
        'pink': (255, 160, 190),
    },
    sizes={'tiny': 0.07, 'mid': 0.11, 'big': 0.16},
    positions=(('upper left', 'upper middle', 'upper right'),
               ('west', 'center', 'east'),
               ('lower left', 'lower middle', 'lower right')),
    numbers=('none', 'single', 'pair of', 'trio of', 'four'))

#: Visually close classes with class-independent textures: the benchmark's
#: colours and words, harder classes.
CLOSE_STYLE = ShapesStyle(
    name='close',
    shapes=('circle', 'octagon', 'hexagon', 'pentagon', 'square',
            'rectangle', 'diamond', 'trapezoid', 'ellipse', 'semicircle'),
    colours=SHAPES_STYLE.colours,
    sizes=SHAPES_STYLE.sizes,
    positions=SHAPES_STYLE.positions,
    numbers=SHAPES_STYLE.numbers,
    textures=('plain', 'stripes', 'checks', 'dots'))

STYLES = {
    style.name: style
    for style in (SHAPES_STYLE, OTHER_STYLE, CLOSE_STYLE)
}


def get_style(name: str) -> ShapesStyle:
    """The style called ``name``; a ValueError names the known ones."""
    if name not in STYLES:
        raise ValueError(f'unknown shapes style {name!r}; expected one of '
                         f'{sorted(STYLES)}')
    return STYLES[name]
