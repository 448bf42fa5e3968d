# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest

from mmupv2.datasets.shapes import generate_shapes


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> str:
    """A small shapes benchmark (12 train / 6 val images of 96x96), generated
    once per test session."""
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes(str(root), num_train=12, num_val=6, seed=3, img_size=96)
    return str(root)
