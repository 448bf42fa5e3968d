# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
from mmengine.config import Config

from mmupv2.datasets.shapes import generate_shapes
from mmupv2.utils import register_all_modules

from .tiny_shapes_model import CONFIG


@pytest.fixture(scope='session')
def small_shapes_root(tmp_path_factory) -> str:
    """4 train images of 96 x 96 (1-4 shapes each), their captions and
    texts, in the benchmark's formats."""
    root = tmp_path_factory.mktemp('overfit_shapes')
    generate_shapes(str(root), num_train=4, num_val=1, seed=11, img_size=96)
    return str(root) + '/'


@pytest.fixture(scope='session')
def tiny_cfg() -> Config:
    register_all_modules()
    return Config.fromfile(CONFIG)
