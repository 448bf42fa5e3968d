# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The built-in "shapes" benchmark: a deterministic generator of a small
multi-task data set written in the standard formats of the real ones."""
from .captions import make_captions
from .generator import GENERATOR_VERSION, generate_shapes
from .scene import COLOURS, SHAPES, SIZES, SceneObject, draw_scene
from .styles import OTHER_STYLE, SHAPES_STYLE, STYLES, ShapesStyle, get_style
from .tokenizer import train_tokenizer

__all__ = [
    'COLOURS', 'GENERATOR_VERSION', 'OTHER_STYLE', 'SHAPES', 'SHAPES_STYLE',
    'SIZES', 'STYLES', 'SceneObject', 'ShapesStyle', 'draw_scene',
    'generate_shapes', 'get_style', 'make_captions', 'train_tokenizer'
]
