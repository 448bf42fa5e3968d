# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A tiny random-init Uni-Perceiver v2 behind the inferencer (config
``tests/data/configs/upv2_tiny_random.py``: the tiny model of
``configs/_base_/models/upv2_tiny.py`` with the stub image encoder, every
task head) and a checkpoint of it whose meta names its own class names."""
import glob
import os.path as osp
import warnings
from typing import List

import pytest
import torch

from mmupv2.apis import UniPerceiverInferencer

CONFIG = osp.join(
    osp.dirname(__file__), '..', 'data', 'configs', 'upv2_tiny_random.py')
#: ``meta.dataset_meta`` of the checkpoint, as MultiTaskLoop saves it.
CKPT_DATASET_META = {
    'coco_det': dict(classes=('goldfish', 'tench', 'shark'),
                     task='detection'),
    'in1k': dict(classes=('dog', 'cat'), task='classification'),
    'coco_caption': dict(task='captioning'),
}


@pytest.fixture(scope='module')
def tiny_config(shapes_root) -> str:
    """The config path; ``MMUPV2_SHAPES_ROOT`` points at the session's
    shapes benchmark (its tokenizer) while the module runs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MMUPV2_SHAPES_ROOT', shapes_root)
        yield CONFIG


@pytest.fixture(scope='module')
def inferencer(tiny_config) -> UniPerceiverInferencer:
    """Random weights, the config's class names."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "Checkpoint is not loaded"
        return UniPerceiverInferencer(tiny_config)


@pytest.fixture(scope='module')
def checkpoint(inferencer, tmp_path_factory) -> str:
    """The inferencer's weights with :data:`CKPT_DATASET_META`."""
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save(
        dict(state_dict=inferencer.model.state_dict(),
             meta=dict(dataset_meta=CKPT_DATASET_META)), path)
    return path


@pytest.fixture(scope='module')
def image_paths(shapes_root) -> List[str]:
    """Two 96x96 shapes images (PNG)."""
    return sorted(glob.glob(osp.join(shapes_root, 'images', 'val',
                                     '*.png')))[:2]
