# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Captions that tell shapes scenes apart.

Every scene gets three different captions: by size, by position, and by
count. Together with the colours they name, they identify an image among its
neighbours well enough for retrieval and give captioning a real target.
"""
import re
from typing import List, Sequence

import numpy as np

from .scene import SceneObject
from .styles import SHAPES_STYLE, ShapesStyle


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ', '.join(phrases[:-1]) + ' and ' + phrases[-1]


def _a(phrase: str) -> str:
    """``phrase`` with its indefinite article: 'an orange star'."""
    return ('an ' if phrase[0] in 'aeiou' else 'a ') + phrase


def _where(position: str) -> str:
    if position == 'center':
        return 'in the center'
    if position in ('left', 'right'):
        return f'on the {position}'
    return f'at the {position}'


def make_captions(objects: Sequence[SceneObject], rng: np.random.Generator,
                  style: ShapesStyle = SHAPES_STYLE) -> List[str]:
    """Three different captions of one scene.

    Args:
        objects: the scene's objects (any order).
        rng: picks the order of objects in the positional caption.
        style: the style the scene was drawn in (its size and count words).

    Returns:
        list[str]: ``[by size, by position, by count]``, e.g.
        ``['a large red star and a small blue ring',
        'a blue ring at the top left and a red star in the center',
        'two shapes: a red star and a blue ring']``.
    """
    size_rank = style.size_rank
    by_size = sorted(objects, key=lambda o: size_rank[o.size])
    size_caption = _join(
        [_a(f'{o.size} {o.colour} {o.shape}') for o in by_size])
    order = rng.permutation(len(objects))
    position_caption = _join([
        _a(f'{objects[i].colour} {objects[i].shape} '
           f'{_where(objects[i].position)}') for i in order
    ])
    noun = style.noun if len(objects) == 1 else style.noun + 's'
    count_caption = f'{style.numbers[len(objects)]} {noun}: ' + _join(
        [_a(f'{o.colour} {o.shape}') for o in by_size])
    return [size_caption, position_caption, count_caption]


def caption_tokens(caption: str) -> List[str]:
    """Karpathy-style ``tokens``: lower-case words without punctuation."""
    return re.findall(r'[a-z0-9]+', caption.lower())
