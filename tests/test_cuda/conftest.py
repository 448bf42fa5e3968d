# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.datasets.shapes import generate_shapes


@pytest.fixture(scope='session')
def cuda_shapes_root(tmp_path_factory) -> str:
    """4 train images of 96 x 96 in the shapes benchmark's formats (made
    only when a GPU test asks for them)."""
    if not torch.cuda.is_available():
        pytest.skip('needs a CUDA device')
    root = tmp_path_factory.mktemp('cuda_shapes')
    generate_shapes(str(root), num_train=4, num_val=1, seed=11, img_size=96)
    return str(root) + '/'
