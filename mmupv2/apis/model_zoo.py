# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The model zoo index: OpenMMLab ``metafile.yml`` files under the config
roots (``configs/uniperceiver_v2/metafile.yml``), read as mmpretrain's
``ModelHub`` and mmdet's ``DetInferencer`` read theirs, so that a model
*name* gives its config and weights::

    UniPerceiverInferencer('upv2_tiny_shapes')   # a metafile Name

A metafile's ``Config`` is relative to the folder that holds ``configs/``
(the repository, or an installed package's ``.mim``); ``Weights`` is a
path, URL or ``package://`` address, or empty where none is published.
A name that no metafile lists may still be the file name of a config
under the roots (:func:`find_config`).
"""
import glob
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.fileio import load

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Where a model *name* (``model='upv2_tiny_shapes'``) is looked up: the
#: repository's ``configs/`` and an installed package's ``.mim/configs``.
CONFIG_ROOTS = (osp.join(osp.dirname(_PACKAGE_DIR), 'configs'),
                osp.join(_PACKAGE_DIR, '.mim', 'configs'))


@dataclass
class ModelInfo:
    """One ``Models`` entry of a metafile.

    Attributes:
        name: its ``Name``.
        config: the absolute path of its ``Config``.
        weights: its ``Weights`` (None when empty).
        collection: its ``In Collection``.
        results: its ``Results`` (``Task`` / ``Dataset`` / ``Metrics``).
        metafile: the metafile it comes from.
    """
    name: str
    config: str
    weights: Optional[str]
    collection: Optional[str] = None
    results: List[dict] = field(default_factory=list)
    metafile: str = ''


def metafiles(config_roots: Sequence[str]) -> List[str]:
    """Every ``metafile.yml`` under the config roots (sorted per root)."""
    found = []
    for root in config_roots:
        found.extend(
            sorted(glob.glob(osp.join(root, '**', 'metafile.yml'),
                             recursive=True)))
    return found


def _config_path(config: str, root: str, metafile: str) -> str:
    """A metafile's ``Config``: absolute, or relative to the folder above
    ``root`` (``configs/...``), or to the metafile's folder."""
    if osp.isabs(config):
        return config
    candidates = (osp.join(osp.dirname(osp.abspath(root)), config),
                  osp.join(osp.dirname(osp.abspath(metafile)), config))
    for path in candidates:
        if osp.isfile(path):
            return path
    return candidates[0]


def read_metafile(path: str, root: Optional[str] = None) -> List[ModelInfo]:
    """The models of one metafile.

    Args:
        path: the ``metafile.yml``.
        root: the config root it was found under (default: the metafile's
            parent's parent, i.e. ``configs/`` for
            ``configs/uniperceiver_v2/metafile.yml``).

    Raises:
        ValueError: the file has no ``Models`` list, or a model lacks a
            ``Name`` or ``Config`` (the message names the file and model).
    """
    root = root or osp.dirname(osp.dirname(osp.abspath(path)))
    doc = load(path, file_format='yaml') or {}
    models = doc.get('Models')
    if not isinstance(models, list):
        raise ValueError(f'{path}: no "Models" list')
    infos = []
    for i, model in enumerate(models):
        if not isinstance(model, dict) or not model.get('Name') \
                or not model.get('Config'):
            raise ValueError(f'{path}: Models[{i}] needs a "Name" and a '
                             f'"Config", got {model!r}')
        infos.append(
            ModelInfo(
                name=model['Name'],
                config=_config_path(model['Config'], root, path),
                weights=model.get('Weights') or None,
                collection=model.get('In Collection'),
                results=list(model.get('Results') or []),
                metafile=path))
    return infos


def model_index(config_roots: Sequence[str]) -> Dict[str, ModelInfo]:
    """``{Name: ModelInfo}`` of every metafile under the config roots (the
    first root that names a model wins)."""
    index: Dict[str, ModelInfo] = {}
    for root in config_roots:
        for path in metafiles([root]):
            for info in read_metafile(path, root):
                index.setdefault(info.name, info)
    return index


def find_config(name: str) -> str:
    """The path of the config called ``name`` (file name without ``.py``)
    under :data:`CONFIG_ROOTS` (``_base_`` excluded).

    Raises:
        ValueError: no such config; the message lists the known names.
    """
    stem = name[:-3] if name.endswith('.py') else name
    known = {}
    for root in CONFIG_ROOTS:
        for path in sorted(glob.glob(osp.join(root, '**', '*.py'),
                                     recursive=True)):
            if '_base_' not in osp.relpath(path, root).split(osp.sep):
                known.setdefault(osp.splitext(osp.basename(path))[0], path)
    if stem not in known:
        names = set(known) | set(model_index(CONFIG_ROOTS))
        raise ValueError(
            f'model {name!r} is neither a config file nor the name of a '
            f'model (metafile.yml) or config under '
            f'{" or ".join(CONFIG_ROOTS)}; known names: '
            f'{", ".join(sorted(names)) or "none"}')
    return known[stem]


def resolve_model_name(name: str) -> Tuple[str, Optional[str]]:
    """The config file and the weights of a model *name*: a ``Name`` of a
    ``metafile.yml`` under :data:`CONFIG_ROOTS` (its ``Config`` and
    ``Weights``), else the config file of that name (no weights).

    Raises:
        FileNotFoundError: the metafile's ``Config`` does not exist.
        ValueError: no such name (see :func:`find_config`).
    """
    info = model_index(CONFIG_ROOTS).get(name)
    if info is None:
        return find_config(name), None
    if not osp.isfile(info.config):
        raise FileNotFoundError(
            f'model {name!r} of {info.metafile}: its Config '
            f'{info.config} does not exist')
    return info.config, info.weights
