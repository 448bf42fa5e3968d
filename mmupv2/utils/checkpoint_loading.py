# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Loading weights into Uni-Perceiver v2 with a check of every key.

Three sources (docs/model_zoo.md):

- **a pre-trained backbone** from an mmpretrain / mmdet / mmupv2 checkpoint
  or a plain backbone state dict (torchvision):
  :func:`load_backbone_checkpoint`. In a config, mmengine's initialiser does
  the same without the check::

      backbone=dict(..., init_cfg=dict(type='Pretrained',
                                       checkpoint='swin_b.pth',
                                       prefix='backbone.'))

  ``prefix`` selects the backbone's keys of a whole-model checkpoint:
  ``'backbone.'`` for mmpretrain classifiers and mmdet detectors,
  ``'image_encoder.backbone.'`` for an mmupv2 checkpoint, none for a plain
  backbone state dict (``torchvision://resnet50``). mmengine only *warns*
  about keys that do not fit (and only on rank 0), so a wrong prefix or
  architecture trains from random weights; call
  :func:`load_backbone_checkpoint` once on the built model to see that the
  file fits (it raises :class:`CheckpointMismatchError` naming every key
  that does not).
- **a whole model**: :func:`load_model_checkpoint` (strict by default;
  ``tools/test.py``, the inferencer and the demo use it, with
  ``--allow-partial`` / ``allow_partial=True`` for the rare intentional
  partial load). The Runner's ``load_from`` goes through mmengine's
  non-strict loader (warnings only).
- **the text encoder** from a local Hugging Face folder: no helper needed,
  ``HFTextEncoder(name_or_path='/path/to/roberta-base')`` reads the config,
  tokenizer and weights there (``save_pretrained`` writes such a folder).

The files are read by :func:`mmupv2.utils.checkpoint.load_checkpoint`
(local paths, URLs, ``torchvision://`` ...), weights-only: no code from the
file runs unless the caller trusts it (``trust=True``; see
``docs/checkpoints.md``).
"""
import logging
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from .checkpoint import load_checkpoint

StateDict = Dict[str, Tensor]
Checkpoint = Union[str, Mapping]

#: Where a backbone's keys live in whole-model checkpoints, tried in order by
#: ``prefix='auto'``: an mmupv2 model (``UniPerceiverV2`` or
#: ``ClassAgnosticProposer``), then an mmpretrain classifier / self-
#: supervised model or an mmdet detector.
BACKBONE_PREFIXES = ('image_encoder.backbone.', 'backbone.')

#: Missing backbone keys that are expected: mmpretrain's Swin adds an output
#: LayerNorm per ``out_indices`` entry (``norm0`` ... ``norm3``), and a
#: classifier checkpoint has only the last one.
DEFAULT_ALLOW_MISSING = (r'norm\d+\.', )

#: Unexpected backbone keys that are expected: torchvision's classifier.
DEFAULT_IGNORE_UNEXPECTED = (r'fc\.', )

_MAX_LISTED = 20
#: torch's message for a tensor of the wrong shape
_SIZE_MISMATCH = re.compile(
    r'size mismatch for (\S+): copying a param with shape (.*?) from '
    r'checkpoint, the shape in current model is (.*?)\.(?:\n|$)')


def _list_keys(keys: Sequence[str]) -> str:
    shown = ', '.join(keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return shown + (f', ... ({more} more)' if more > 0 else '')


def _key_groups(keys: Sequence[str], depth: int = 2) -> str:
    """``'backbone.layer1 (30), neck (4)'``: the key prefixes of a state
    dict, ``depth`` levels deep, with their counts."""
    counts = Counter('.'.join(k.split('.')[:depth]) for k in keys)
    return ', '.join(f'{k} ({n})' for k, n in counts.most_common(12))


def _shape_mismatches(message: str) -> List[str]:
    """``['key: checkpoint torch.Size([..]), model torch.Size([..])']`` from
    torch's ``load_state_dict`` error."""
    return [
        f'{key}: checkpoint {theirs}, model {ours}'
        for key, theirs, ours in _SIZE_MISMATCH.findall(message)
    ]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit a module.

    The message starts with the counts (missing / unexpected /
    shape-mismatched) and lists the first :data:`_MAX_LISTED` keys of each.

    Attributes:
        source: the checkpoint (path) and prefix, as named in the message.
        missing_keys: keys of the module that the checkpoint lacks.
        unexpected_keys: keys of the checkpoint that the module lacks.
        shape_mismatches: ``'key: checkpoint <shape>, model <shape>'`` per
            tensor of the wrong shape.
        size_mismatch: torch's message on tensors of the wrong shape
            (empty if none).
    """

    def __init__(self,
                 source: str,
                 missing_keys: Sequence[str] = (),
                 unexpected_keys: Sequence[str] = (),
                 size_mismatch: str = '',
                 hint: str = '') -> None:
        self.source = source
        self.missing_keys = list(missing_keys)
        self.unexpected_keys = list(unexpected_keys)
        self.size_mismatch = size_mismatch
        self.shape_mismatches = _shape_mismatches(size_mismatch)
        counts = (f'{len(self.missing_keys)} missing, '
                  f'{len(self.unexpected_keys)} unexpected, '
                  f'{len(self.shape_mismatches)} shape-mismatched keys')
        lines = [f'{source} does not fit the model ({counts}):']
        if self.missing_keys:
            lines.append(f'  missing keys ({len(self.missing_keys)}): '
                         f'{_list_keys(self.missing_keys)}')
        if self.unexpected_keys:
            lines.append(f'  unexpected keys ({len(self.unexpected_keys)}): '
                         f'{_list_keys(self.unexpected_keys)}')
        if self.shape_mismatches:
            lines.append(
                f'  shape mismatches ({len(self.shape_mismatches)}): '
                f'{_list_keys(self.shape_mismatches)}')
        elif size_mismatch:
            lines.append(f'  {size_mismatch}')
        if hint:
            lines.append(hint)
        super().__init__('\n'.join(lines))


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        source: the checkpoint (path) and prefix.
        num_loaded: tensors of the checkpoint that were loaded.
        missing_keys: keys of the module that kept their values.
        unexpected_keys: keys of the checkpoint that were not used.
    """
    source: str
    num_loaded: int
    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)


def checkpoint_state_dict(checkpoint: Checkpoint,
                          map_location: Optional[str] = 'cpu',
                          revise_keys: Sequence[Tuple[str, str]] = (
                              (r'^module\.', ''), ),
                          trust: Optional[bool] = None) -> StateDict:
    """The state dict of a checkpoint file (or of a loaded checkpoint).

    Args:
        checkpoint: a path / URL / ``torchvision://...`` read by
            :func:`~mmupv2.utils.checkpoint.load_checkpoint`, or an already
            loaded checkpoint dict.
        map_location: as in :func:`torch.load`.
        revise_keys: ``(pattern, replacement)`` applied to every key in
            order; the default strips the ``module.`` of DDP-wrapped saves.
        trust: read the file with ``weights_only=False`` (see
            :func:`~mmupv2.utils.checkpoint.load_checkpoint`).

    Returns:
        OrderedDict: ``checkpoint['state_dict']`` if present, else the whole
        dict, keys revised.
    """
    if isinstance(checkpoint, str):
        checkpoint = load_checkpoint(
            checkpoint, map_location=map_location, trust=trust)
    if not isinstance(checkpoint, Mapping):
        raise TypeError('a checkpoint must be a dict (or a state dict), got '
                        f'{type(checkpoint).__name__}')
    state_dict = checkpoint.get('state_dict', checkpoint)
    for pattern, replacement in revise_keys:
        state_dict = OrderedDict(
            (re.sub(pattern, replacement, k), v)
            for k, v in state_dict.items())
    return OrderedDict(state_dict)


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str,
                 source: str = 'the checkpoint') -> StateDict:
    """The entries whose key starts with ``prefix``, without it.

    Raises:
        KeyError: no key starts with ``prefix``; the message names the key
            prefixes the checkpoint has.
    """
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                      if k.startswith(prefix))
    if not out:
        raise KeyError(
            f'{source}: no key starts with {prefix!r}; its keys start with '
            f'{_key_groups(list(state_dict))}')
    return out


def find_backbone_prefix(state_dict: Mapping[str, Tensor]) -> str:
    """The first of :data:`BACKBONE_PREFIXES` that some key starts with, or
    ``''`` (a plain backbone state dict)."""
    for prefix in BACKBONE_PREFIXES:
        if any(k.startswith(prefix) for k in state_dict):
            return prefix
    return ''


def backbone_state_dict(checkpoint: Checkpoint,
                        prefix: Optional[str] = 'auto',
                        map_location: Optional[str] = 'cpu'
                        ) -> Tuple[StateDict, str]:
    """The backbone's weights in a checkpoint, keys relative to the
    backbone.

    Args:
        checkpoint: path / URL / loaded dict (see
            :func:`checkpoint_state_dict`).
        prefix: where the backbone's keys are: ``'auto'`` tries
            :data:`BACKBONE_PREFIXES` and else takes every key; ``None`` or
            ``''`` takes every key; any other string is required.
        map_location: as in :func:`torch.load`.

    Returns:
        tuple: the state dict and the prefix used.

    Raises:
        KeyError: an explicit ``prefix`` matches no key (the message names
            the prefixes the checkpoint has).
    """
    name = checkpoint if isinstance(checkpoint, str) else 'the checkpoint'
    state_dict = checkpoint_state_dict(checkpoint, map_location)
    if prefix == 'auto':
        prefix = find_backbone_prefix(state_dict)
    if not prefix:
        return state_dict, ''
    return strip_prefix(state_dict, prefix, name), prefix


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if is_model_wrapper(module) else module


def _matching(keys: Sequence[str], patterns: Sequence[str]) -> List[str]:
    return [k for k in keys if any(re.match(p, k) for p in patterns)]


def load_state_dict_checked(module: nn.Module,
                            state_dict: Mapping[str, Tensor],
                            strict: bool = True,
                            source: str = 'the checkpoint',
                            allow_missing: Sequence[str] = (),
                            ignore_unexpected: Sequence[str] = (),
                            hint: str = '') -> LoadReport:
    """Load ``state_dict`` into ``module`` and account for every key.

    Every module's own ``_load_from_state_dict`` runs (as in
    :meth:`torch.nn.Module.load_state_dict`), so mmpretrain's version
    upgrades and Swin's relative-position-table resizing apply before keys
    and shapes are compared. BatchNorm's ``num_batches_tracked`` may be
    missing (old checkpoints), as mmengine allows.

    Args:
        module: the module (a DDP wrapper is unwrapped).
        state_dict: keys relative to ``module``.
        strict: raise if a key is missing (unless it matches
            ``allow_missing``), unexpected (unless it matches
            ``ignore_unexpected``) or of the wrong shape; otherwise log a
            warning, skip the tensors of the wrong shape and go on.
        source: what the message calls the checkpoint.
        allow_missing: regular expressions (``re.match``) of module keys
            that may keep their initial values.
        ignore_unexpected: regular expressions of checkpoint keys that are
            not meant for the module.
        hint: a last line for the error (e.g. how to allow a partial load).

    Returns:
        LoadReport: what was loaded and what was not.

    Raises:
        CheckpointMismatchError: a key does not fit and ``strict``, or a
            tensor has the wrong shape in a way torch does not name. As
            with torch, the tensors that fit are loaded before the error is
            raised.
    """
    module = _unwrap(module)
    shape_message = ''
    try:
        result = module.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # torch reports shape mismatches this way
        shape_message = str(e).strip()
        wrong = [k for k, _, _ in _SIZE_MISMATCH.findall(shape_message)]
        if strict or not wrong:
            expected = set(module.state_dict())
            raise CheckpointMismatchError(
                source,
                missing_keys=sorted(expected - set(state_dict)),
                unexpected_keys=sorted(set(state_dict) - expected),
                size_mismatch=shape_message,
                hint=hint) from e
        # a partial load: the tensors of the wrong shape keep their values
        state_dict = OrderedDict(
            (k, v) for k, v in state_dict.items() if k not in wrong)
        result = module.load_state_dict(state_dict, strict=False)
        result.missing_keys[:] = [
            k for k in result.missing_keys if k not in wrong
        ]
    missing = [
        k for k in result.missing_keys if 'num_batches_tracked' not in k
    ]
    unexpected = list(result.unexpected_keys)
    ignored = set(_matching(unexpected, ignore_unexpected))
    unexpected = [k for k in unexpected if k not in ignored]
    allowed = set(_matching(missing, allow_missing))
    bad_missing = [k for k in missing if k not in allowed]
    if bad_missing or unexpected or shape_message:
        error = CheckpointMismatchError(
            source, bad_missing, unexpected, size_mismatch=shape_message,
            hint=hint)
        if strict:
            raise error
        print_log(
            f'{error} (loaded the rest: a partial load was asked for)',
            logger='current',
            level=logging.WARNING)
    return LoadReport(
        source=source,
        num_loaded=len(state_dict) - len(unexpected) - len(ignored),
        missing_keys=missing,
        unexpected_keys=unexpected)


def find_backbone(model: nn.Module) -> nn.Module:
    """``model.image_encoder.backbone`` (a ``UniPerceiverV2`` or
    ``ClassAgnosticProposer``), ``model.backbone`` (an image encoder), or
    ``model`` itself (a backbone)."""
    model = _unwrap(model)
    encoder = getattr(model, 'image_encoder', model)
    return getattr(encoder, 'backbone', encoder)


def load_backbone_checkpoint(
        model: nn.Module,
        checkpoint: Checkpoint,
        prefix: Optional[str] = 'auto',
        strict: bool = True,
        allow_missing: Sequence[str] = DEFAULT_ALLOW_MISSING,
        ignore_unexpected: Sequence[str] = DEFAULT_IGNORE_UNEXPECTED,
        map_location: Optional[str] = 'cpu') -> LoadReport:
    """Load pre-trained backbone weights into the image encoder's backbone.

    Example::

        >>> model = MODELS.build(cfg.model)
        >>> load_backbone_checkpoint(model, 'swin_base_384_22k.pth')
        LoadReport(source="swin_base_384_22k.pth [backbone.]", ...)

    Args:
        model: a ``UniPerceiverV2``, an image encoder or the backbone itself
            (see :func:`find_backbone`).
        checkpoint: path / URL / loaded dict: an mmpretrain classifier or
            self-supervised model, an mmdet detector or an mmupv2 model
            (whole-model checkpoints), or a plain backbone state dict.
        prefix: where the backbone's keys are (see
            :func:`backbone_state_dict`; ``'auto'`` by default).
        strict: raise :class:`CheckpointMismatchError` when keys do not fit
            (see :func:`load_state_dict_checked`).
        allow_missing: backbone keys that may stay as initialised (default:
            Swin's extra output norms).
        ignore_unexpected: checkpoint keys not meant for the backbone
            (default: torchvision's ``fc``).
        map_location: as in :func:`torch.load`.

    Returns:
        LoadReport: what was loaded; ``source`` names the file and prefix.
    """
    state_dict, used = backbone_state_dict(checkpoint, prefix, map_location)
    name = checkpoint if isinstance(checkpoint, str) else 'checkpoint'
    return load_state_dict_checked(
        find_backbone(model),
        state_dict,
        strict=strict,
        source=f'{name} [{used or "no prefix"}]',
        allow_missing=allow_missing,
        ignore_unexpected=ignore_unexpected)


#: The last line of a whole-model mismatch error.
PARTIAL_LOAD_HINT = (
    'Is it a checkpoint of this config? To load only the tensors that fit '
    '(rarely intended), pass --allow-partial (tools/test.py, '
    'demo/image_demo.py), allow_partial=True (UniPerceiverInferencer) or '
    'strict=False (load_model_checkpoint).')


def load_model_checkpoint(
        model: nn.Module,
        filename: Checkpoint,
        strict: bool = True,
        map_location: Optional[str] = 'cpu',
        revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), ),
        *,
        trust: Optional[bool] = None,
        source: Optional[str] = None) -> dict:
    """Load a whole-model checkpoint (e.g. ``iter_200000.pth``), checking
    that every key fits.

    Unlike mmengine's ``load_checkpoint`` (and the Runner's ``load_from``),
    which by default only warn, and only on rank 0, this raises on every
    rank and names each key that does not fit. The file is read
    weights-only (:func:`~mmupv2.utils.checkpoint.load_checkpoint`).

    Args:
        model: the model (a DDP wrapper is unwrapped).
        filename: path / URL of an mmengine checkpoint or a state dict, or
            such a checkpoint already loaded.
        strict: raise on missing, unexpected or wrongly shaped keys
            (default); otherwise warn and load the tensors that fit.
        map_location: as in :func:`torch.load`.
        revise_keys: ``(pattern, replacement)`` applied to the keys first.
        trust: read the file with ``weights_only=False`` (runs code; see
            ``docs/checkpoints.md``); None follows
            ``MMUPV2_TRUST_CHECKPOINTS``.
        source: what messages call the checkpoint (default: ``filename``).

    Returns:
        dict: the loaded checkpoint (``meta`` holds e.g. ``dataset_meta``).

    Raises:
        CheckpointMismatchError: with the counts and the first missing,
            unexpected and wrongly shaped keys.
        UnsafeCheckpointError: the file holds more than weights and plain
            data, and it is not trusted.
    """
    if source is None:
        source = filename if isinstance(filename, str) else 'the checkpoint'
    checkpoint = load_checkpoint(
        filename, map_location=map_location, trust=trust) if isinstance(
            filename, str) else filename
    state_dict = checkpoint_state_dict(checkpoint, revise_keys=revise_keys)
    load_state_dict_checked(
        model, state_dict, strict=strict, source=source,
        hint=PARTIAL_LOAD_HINT)
    return checkpoint


def load_runner_checkpoint(runner,
                           filename: str,
                           strict: bool = True,
                           *,
                           trust: Optional[bool] = None) -> dict:
    """``Runner.load_checkpoint`` made strict and weights-only: read the
    file (:func:`~mmupv2.utils.checkpoint.load_checkpoint`), let the hooks
    see it (``after_load_checkpoint``), then load the weights into
    ``runner.model`` with :func:`load_model_checkpoint` (every key checked).
    ``tools/test.py`` loads its CHECKPOINT this way.

    Args:
        runner: an mmengine ``Runner`` / ``FlexibleRunner`` (before
            ``test()``).
        filename: the checkpoint.
        strict: raise :class:`CheckpointMismatchError` on any key that does
            not fit; False warns and loads the tensors that fit.
        trust: see :func:`~mmupv2.utils.checkpoint.load_checkpoint`.

    Returns:
        dict: the checkpoint.
    """
    checkpoint = load_checkpoint(filename, map_location='cpu', trust=trust)
    runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    load_model_checkpoint(
        runner.model, checkpoint, strict=strict, source=filename)
    runner.logger.info(f'Load checkpoint from {filename}')
    return checkpoint
