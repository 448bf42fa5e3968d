# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Model names from metafile.yml: the inferencer finds the config and the
weights of a ``Name`` (as mmdet's ``DetInferencer('rtmdet_tiny_8xb32-300e_
coco')``)."""
import os.path as osp
import warnings

import pytest
import torch

from mmupv2.apis import UniPerceiverInferencer, model_zoo
from mmupv2.apis.model_zoo import model_index, read_metafile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_repository_metafile_names():
    index = model_index(model_zoo.CONFIG_ROOTS)
    info = index['upv2_tiny_shapes']
    assert info.config == osp.join(ROOT, 'configs', 'uniperceiver_v2',
                                   'upv2_tiny_shapes.py')
    assert info.weights is None
    assert info.collection == 'Uni-Perceiver v2'
    assert 'upv2_swin-l_64xb-mt-200k_table8' in index


def _write_metafile(folder, config, weights) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'metafile.yml'
    path.write_text(
        'Collections:\n  - Name: tiny\nModels:\n'
        f'  - Name: tiny_zoo\n    In Collection: tiny\n'
        f'    Config: {config}\n    Weights: {weights}\n'
        f'  - Name: tiny_zoo_no_weights\n    In Collection: tiny\n'
        f'    Config: {config}\n    Weights:\n')
    return str(path)


def test_inferencer_resolves_a_metafile_name(tiny_config, checkpoint,
                                             tmp_path, monkeypatch):
    configs = tmp_path / 'configs'
    metafile = _write_metafile(configs / 'tiny', osp.abspath(tiny_config),
                               checkpoint)
    assert [i.name for i in read_metafile(metafile)] == [
        'tiny_zoo', 'tiny_zoo_no_weights'
    ]
    monkeypatch.setattr(model_zoo, 'CONFIG_ROOTS', (str(configs), ))
    by_name = UniPerceiverInferencer('tiny_zoo')
    saved = torch.load(checkpoint, weights_only=True)['state_dict']
    for key, value in by_name.model.state_dict().items():
        torch.testing.assert_close(value, saved[key])
    # the checkpoint's class names came with the metafile's weights
    assert by_name.dataset_meta['coco_det']['classes'][0] == 'goldfish'

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "Checkpoint is not loaded"
        bare = UniPerceiverInferencer('tiny_zoo_no_weights')
    assert bare.dataset_meta == {}

    with pytest.raises(ValueError, match='tiny_zoo_no_weights'):
        UniPerceiverInferencer('no_such_model')  # the names are listed


def test_relative_config_and_missing_file(tmp_path, monkeypatch):
    configs = tmp_path / 'configs'
    _write_metafile(configs / 'tiny', 'configs/tiny/missing.py', '')
    info = model_index([str(configs)])['tiny_zoo']
    assert info.config == str(configs / 'tiny' / 'missing.py')
    assert info.weights is None
    monkeypatch.setattr(model_zoo, 'CONFIG_ROOTS', (str(configs), ))
    with pytest.raises(FileNotFoundError, match='missing.py'):
        UniPerceiverInferencer('tiny_zoo')
