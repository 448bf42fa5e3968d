# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Convert OpenAI CLIP's ResNet image tower to a ``CLIPModifiedResNet``
backbone checkpoint.

    python tools/model_converters/clip_to_mmupv2.py RN50.pt \
        checkpoints/clip_rn50_backbone.pth

``src`` is one of OpenAI's released ResNet files (``RN50.pt``, a
TorchScript archive, as downloaded by ``clip.load``) or a plain state dict
(or a dict with ``'state_dict'``) with OpenAI's key names. The ``visual.*``
tensors are kept, except ``visual.attnpool.*`` (``CLIPModifiedResNet`` has
no attention pool), with ``visual.`` stripped and floating-point tensors
cast to float32 (OpenAI stores the convolutions in float16). ``dst`` gets
``{'state_dict': ..., 'meta': ...}``, which a config loads with
``init_cfg=dict(type='Pretrained', checkpoint=dst)`` (no ``prefix``).
"""
import argparse
import os
import os.path as osp
import re
import sys
import warnings
from collections import OrderedDict
from typing import Dict, Tuple

import torch

from mmupv2.utils import UnsafeCheckpointError, load_checkpoint

VISUAL = 'visual.'
ATTNPOOL = 'visual.attnpool.'


def load_clip_state_dict(src: str) -> Dict[str, torch.Tensor]:
    """The state dict of a CLIP file: TorchScript archive, plain state dict
    or a dict holding one under ``'state_dict'``."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'{src}: no such file')
    try:
        with warnings.catch_warnings():  # torch >= 2.9 deprecates jit.load
            warnings.simplefilter('ignore', FutureWarning)
            return torch.jit.load(src, map_location='cpu').state_dict()
    except RuntimeError as jit_error:  # not TorchScript: a pickled dict
        try:  # weights-only (docs/checkpoints.md)
            ckpt = load_checkpoint(src, map_location='cpu')
        except UnsafeCheckpointError:
            raise
        except Exception as error:
            raise RuntimeError(
                f'{src}: neither a TorchScript archive ({jit_error}) nor a '
                f'torch.save file ({error})') from error
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, dict):
        raise ValueError(f'{src}: holds a {type(ckpt).__name__}, not a '
                         'state dict')
    return ckpt


def convert(state_dict: Dict[str, torch.Tensor],
            src: str = 'checkpoint') -> Tuple[OrderedDict, int]:
    """``visual.*`` minus ``visual.attnpool.*``, without ``visual.``.

    Returns:
        tuple: (the backbone state dict, how many attnpool tensors were
        dropped).

    Raises:
        ValueError: ``state_dict`` has no ``visual.`` key (not a CLIP
            checkpoint); the message names ``src``.
    """
    if not any(k.startswith(VISUAL) for k in state_dict):
        sample = ', '.join(list(state_dict)[:5]) or 'none'
        raise ValueError(
            f'{src}: no "{VISUAL}*" key, so not an OpenAI CLIP checkpoint '
            f'(first keys: {sample})')
    out = OrderedDict()
    dropped = 0
    for key, value in state_dict.items():
        if key.startswith(ATTNPOOL):
            dropped += 1
        elif key.startswith(VISUAL):
            if torch.is_floating_point(value):
                value = value.float()
            out[key[len(VISUAL):]] = value
    return out, dropped


def describe(state_dict: Dict[str, torch.Tensor]) -> str:
    """``'layers (3, 4, 6, 3), width 64'``: the ``CLIPModifiedResNet``
    arguments that fit a converted state dict."""
    blocks = {}
    for key in state_dict:
        match = re.match(r'layer(\d)\.(\d+)\.', key)
        if match:
            stage, block = map(int, match.groups())
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    layers = tuple(blocks[s] for s in sorted(blocks))
    width = state_dict['conv3.weight'].shape[0] if (
        'conv3.weight' in state_dict) else '?'
    return f'layers {layers}, width {width}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Convert an OpenAI CLIP ResNet (e.g. RN50.pt) to a '
        'CLIPModifiedResNet backbone checkpoint.')
    parser.add_argument('src', help="OpenAI's RN50.pt or a state dict")
    parser.add_argument('dst', help='output .pth path')
    args = parser.parse_args(argv)

    try:
        state_dict, dropped = convert(
            load_clip_state_dict(args.src), args.src)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        sys.exit(f'error: {error}')
    meta = dict(
        source=osp.basename(args.src),
        converter='tools/model_converters/clip_to_mmupv2.py',
        model='CLIPModifiedResNet',
        dropped=f'{dropped} visual.attnpool.* tensors')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'wrote {len(state_dict)} tensors ({describe(state_dict)}) to '
          f'{args.dst}; dropped {dropped} attnpool tensors')
    return 0


if __name__ == '__main__':
    sys.exit(main())
