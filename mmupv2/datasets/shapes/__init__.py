# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The built-in "shapes" benchmark: a deterministic generator of a small
multi-task data set written in the standard formats of the real ones."""
from .captions import make_captions
from .generator import GENERATOR_VERSION, generate_shapes, write_scene_set
from .photo_scene import (
    PHOTO_SOURCES,
    PHOTO_STYLE,
    draw_photo_scene,
    generate_photo_scenes,
)
from .scene import (
    COLOURS,
    SHAPES,
    SIZES,
    SceneObject,
    draw_scene,
    layout_scene,
)
from .styles import (
    CLOSE_STYLE,
    OTHER_STYLE,
    SHAPES_STYLE,
    STYLES,
    ShapesStyle,
    get_style,
)
from .tokenizer import train_tokenizer

__all__ = [
    'CLOSE_STYLE', 'COLOURS', 'GENERATOR_VERSION', 'OTHER_STYLE',
    'PHOTO_SOURCES', 'PHOTO_STYLE', 'SHAPES', 'SHAPES_STYLE', 'SIZES',
    'STYLES', 'SceneObject', 'ShapesStyle', 'draw_photo_scene', 'draw_scene',
    'generate_photo_scenes', 'generate_shapes', 'get_style', 'layout_scene',
    'make_captions', 'train_tokenizer', 'write_scene_set'
]
