# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The tiny model (``configs/_base_/models/upv2_tiny.py``, defined there
once) for the model tests, and the tiny shapes config's model and data on a
small generated set, for the whole-model tests (overfit proofs, batch
independence)."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmupv2.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
CONFIG_DATA_ROOT = 'data/shapes/'
TINY_MODEL = osp.join(ROOT, 'configs', '_base_', 'models', 'upv2_tiny.py')
#: the stub image encoder (``mmupv2.testing``) in place of the tiny one, as
#: wide (d = 64): for the tests that are not about the image encoder
STUB_IMAGE_ENCODER = dict(
    _delete_=True, type='StubImageEncoder', embed_dims=64, num_regions=6)


def tiny_model_cfg(**changes) -> dict:
    """The tiny model's config with ``changes`` merged in as a child config
    would (nested dicts merge, ``_delete_=True`` replaces)."""
    cfg = Config.fromfile(TINY_MODEL)
    # a copy: the merge pops ``_delete_`` from the dicts it is given
    cfg.merge_from_dict(copy.deepcopy(dict(model=changes)))
    return cfg.model.to_dict()


def rebase(obj, root: str):
    """The config's data set dict with ``data/shapes/`` replaced by
    ``root`` in every string."""
    if isinstance(obj, dict):
        return {k: rebase(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(rebase(v, root) for v in obj)
    if isinstance(obj, str) and obj.startswith(CONFIG_DATA_ROOT):
        return root + obj[len(CONFIG_DATA_ROOT):]
    return obj


def build_model(cfg: Config, root: str):
    model_cfg = rebase(copy.deepcopy(cfg.model.to_dict()), root)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def fixed_batch(cfg: Config, task: str, root: str, num: int,
                train_split: bool = True) -> dict:
    """The first ``num`` training samples of ``task``, through the val
    pipeline of the config (deterministic), collated."""
    dataset = rebase(
        copy.deepcopy(cfg.val_dataloader[task].dataset.to_dict()), root)
    if train_split:
        for key in ('ann_file', ):
            dataset[key] = dataset[key].replace('val', 'train')
        if 'split' in dataset:
            dataset['split'] = 'train'
    dataset = DATASETS.build(dataset)
    return pseudo_collate([dataset[i] for i in range(num)])
