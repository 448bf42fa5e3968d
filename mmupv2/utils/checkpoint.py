# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Reading checkpoint files without running code stored in them.

A ``.pth`` file is a pickle, and unpickling can call any Python function the
file names. :func:`load_checkpoint` therefore reads every checkpoint -- a
local path, an ``http(s)://`` URL (downloaded first), ``torchvision://``,
``open-mmlab://``, ``package://`` ... -- with
``torch.load(weights_only=True)``: tensors, plain containers and numbers,
and the few extra types that
mmengine's checkpoints hold (the policy is in ``docs/checkpoints.md``)::

    torch's own allow-list    tensors, dict / list / tuple / OrderedDict,
                              str / int / float / bool / None, torch.Size ...
    + numpy                   ndarray, dtypes (not ``object``), scalars
                              (``message_hub``'s ``eta``, RNG states)
    + HistoryBuffer           rebuilt by :class:`_CheckedHistoryBuffer`
    + getattr                 only ``getattr(HistoryBuffer, <statistic>)``

(mmupv2's own runs write the message hub as plain data, see
:class:`~mmupv2.engine.hooks.DataOnlyCheckpointHook`; the HistoryBuffer
entries are for mmengine's format and older checkpoints.)

**Why getattr, and why it is safe here.** ``message_hub`` stores
``HistoryBuffer`` objects whose pickled state includes their
``statistics_methods`` (``min``, ``max``, ``current``, ``mean``: functions
defined on the class). Pickle writes such a function as
``getattr(HistoryBuffer, 'min')``. Allowing the real ``builtins.getattr``
would hand an attacker a path to any code (``getattr`` reaches
``__globals__``, ``__subclasses__``, ...). Torch's allow-list accepts
``(object, 'module.name')`` pairs, so the name ``builtins.getattr`` is bound
to :func:`_history_buffer_getattr`, which returns only the public functions
of ``HistoryBuffer`` and raises on anything else; the name
``mmengine.logging.history_buffer.HistoryBuffer`` is bound to
:class:`_CheckedHistoryBuffer`, whose ``__setstate__`` accepts only the
buffer's own fields with those functions, then turns the object into a
plain ``HistoryBuffer``. Nothing else in the file can be called.

The allow-list is registered only while mmupv2 reads a file
(``torch.serialization.safe_globals``). mmengine's own loader is not
replaced: importing mmupv2 leaves ``mmengine.runner.load_checkpoint`` as it
was. Within a ``with safe_checkpoint_loading():`` block mmengine's
``CheckpointLoader`` hands every path to :func:`load_checkpoint`, so
``--resume``, ``load_from`` and ``init_cfg=dict(type='Pretrained', ...)`` are
read the same way. The configs' runner (``runner_type='UPv2Runner'``,
:mod:`mmupv2.engine.runner.runner`) opens such a block around each of its
reads; ``tools/train.py`` also runs the whole Runner inside one.

**Trusted files.** A checkpoint that holds other objects (a pickled model,
a custom class) is refused with :class:`UnsafeCheckpointError`, which names
the file, what it holds, and the opt-in: ``trust=True`` (``--trust-checkpoint``
on the tools, ``trust_checkpoint=True`` on the inferencer) or the environment
variable ``MMUPV2_TRUST_CHECKPOINTS=1``. A trusted file is read with
``weights_only=False`` -- it may run code -- and a warning says so every time.
"""
import contextlib
import functools
import importlib
import inspect
import io
import logging
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_file import names_unreadable_file
from .package_resources import PACKAGE_SCHEME, resolve_package_path

#: Set to ``1`` to read checkpoints with ``weights_only=False`` (runs code).
TRUST_ENV = 'MMUPV2_TRUST_CHECKPOINTS'
_TRUE = ('1', 'true', 'yes', 'on')
_HTTP = ('http://', 'https://')
_DOCS = 'docs/checkpoints.md'

MapLocation = Union[str, torch.device, Callable, Dict, None]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects that could run code when loaded.

    Attributes:
        source: the file (or URL) as the user named it.
        reason: what torch's weights-only unpickler refused.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(
            f'{source}: refused to load this checkpoint: it holds Python '
            f'objects beyond tensors and plain data ({reason}); unpickling '
            'them could run code stored in the file. If you trust the file,'
            ' load it with --trust-checkpoint (tools/train.py, tools/test.py,'
            ' demo/image_demo.py), trust_checkpoint=True '
            '(UniPerceiverInferencer), trust=True (mmupv2.utils.'
            f'load_checkpoint) or the environment variable {TRUST_ENV}=1. '
            f'See {_DOCS}.')


def trusts_checkpoints(trust: Optional[bool] = None) -> bool:
    """Whether checkpoints are read with ``weights_only=False``.

    Args:
        trust: an explicit choice (a tool's ``--trust-checkpoint``); None
            reads the environment variable ``MMUPV2_TRUST_CHECKPOINTS``
            (default: not trusted).
    """
    if trust is not None:
        return bool(trust)
    return os.environ.get(TRUST_ENV, '').strip().lower() in _TRUE


# ------------------------------------------------------------ allow-list
@functools.lru_cache(maxsize=1)
def _history_buffer_functions() -> Dict[str, Callable]:
    """``{name: function}``: the public functions defined on
    ``HistoryBuffer`` (its statistics ``min``, ``max``, ``current``,
    ``mean`` among them)."""
    return {
        name: fn
        for name, fn in vars(HistoryBuffer).items()
        if not name.startswith('_') and inspect.isfunction(fn)
    }


def _history_buffer_getattr(obj: Any, name: Any) -> Callable:
    """What the name ``builtins.getattr`` means while mmupv2 unpickles:
    ``getattr(HistoryBuffer, name)`` for a public function of the class,
    an ``UnpicklingError`` for anything else."""
    functions = _history_buffer_functions()
    if obj in (HistoryBuffer, _CheckedHistoryBuffer) and isinstance(
            name, str) and name in functions:
        return functions[name]
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}): only HistoryBuffer statistics '
        f'({", ".join(sorted(functions))}) may be rebuilt with getattr')


class _CheckedHistoryBuffer(HistoryBuffer):
    """What ``mmengine.logging.history_buffer.HistoryBuffer`` is unpickled
    as: checks the state, then becomes a plain ``HistoryBuffer``."""

    _FIELDS = frozenset(('max_length', '_log_history', '_count_history',
                         'statistics_methods'))

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not set(state) <= self._FIELDS:
            raise pickle.UnpicklingError(
                'HistoryBuffer state must be a dict of '
                f'{sorted(self._FIELDS)}, got '
                f'{sorted(state) if isinstance(state, dict) else type(state)}')
        functions = _history_buffer_functions()
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict) or any(
                functions.get(k) is not v for k, v in methods.items()):
            raise pickle.UnpicklingError(
                'HistoryBuffer statistics_methods must be functions of '
                'HistoryBuffer itself')
        self.__class__ = HistoryBuffer
        HistoryBuffer.__setstate__(self, dict(state))


def _numpy_multiarray():
    name = ('numpy._core.multiarray'
            if int(np.__version__.split('.')[0]) >= 2 else
            'numpy.core.multiarray')
    return importlib.import_module(name)


@functools.lru_cache(maxsize=1)
def safe_globals() -> List[Any]:
    """The objects (or ``(object, 'module.name')`` pairs) that mmupv2 adds
    to torch's weights-only allow-list while it reads a checkpoint; see the
    module docstring."""
    multiarray = _numpy_multiarray()
    dtypes = {
        type(np.dtype(t))
        for t in set(np.sctypeDict.values())
        if np.dtype(t).kind not in 'OV'  # no object / void (raw) dtypes
    }
    names: List[Any] = [np.ndarray, np.dtype, *sorted(dtypes, key=str)]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    names += [
        (_CheckedHistoryBuffer,
         'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    return names


def _refusal(error: Exception) -> str:
    """What torch's weights-only unpickler refused, without torch's advice
    (its error wraps the unpickler's, kept as ``__context__``)."""
    inner = error.__context__
    text = str(inner if isinstance(inner, pickle.UnpicklingError) else error)
    found = re.search(r'WeightsUnpickler error: (.*)', text)
    if found:
        text = found.group(1)
    text = ' '.join(text.split())
    return re.split(r'\.? Please use `torch\.serialization', text)[0]


@names_unreadable_file  # a truncated / text file: names it, says why
def _torch_load(f: Union[str, io.BytesIO], source: str,
                map_location: MapLocation, trust: Optional[bool]) -> Any:
    """``torch.load`` of an opened / local file under the policy."""
    if trusts_checkpoints(trust):
        why = ('trust=True' if trust else f'{TRUST_ENV}=1')
        print_log(
            f'{source}: loading with weights_only=False ({why}): the file '
            'can run any code it holds; do this only for files you trust '
            f'(see {_DOCS})',
            logger='current',
            level=logging.WARNING)
        return torch.load(f, map_location=map_location, weights_only=False)
    with torch.serialization.safe_globals(safe_globals()):
        try:
            return torch.load(
                f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            raise UnsafeCheckpointError(source, _refusal(e)) from None


# --------------------------------------------------------------- sources
def download_checkpoint(url: str, model_dir: Optional[str] = None) -> str:
    """Download ``url`` (once) into ``model_dir`` (default
    ``$TORCH_HOME/hub/checkpoints``, as mmengine and torch.hub do) and
    return the local path. Rank 0 downloads first; the other ranks wait.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    cached = osp.join(model_dir, name)
    rank, world_size = get_dist_info()

    def fetch() -> None:
        if not osp.exists(cached):
            print_log(f'Downloading {url} to {cached}', logger='current')
            torch.hub.download_url_to_file(
                url, cached, progress=rank == 0)

    if rank == 0:
        fetch()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            fetch()
    return cached


def _model_zoo_url(filename: str) -> Optional[str]:
    """The URL (or mmengine-home file) behind mmengine's model-zoo names
    (``torchvision://``, ``modelzoo://``, ``open-mmlab://``,
    ``openmmlab://``, ``mmcls://``), or None for other strings."""
    scheme, sep, name = filename.partition('://')
    if not sep:
        return None
    if scheme in ('torchvision', 'modelzoo'):
        table = mmengine_checkpoint.get_torchvision_models()
    elif scheme in ('open-mmlab', 'openmmlab'):
        name = mmengine_checkpoint.get_deprecated_model_names().get(
            name, name)
        table = mmengine_checkpoint.get_external_models()
    elif scheme == 'mmcls':
        table = mmengine_checkpoint.get_mmcls_models()
    else:
        return None
    if name not in table:
        raise KeyError(f'{filename}: {scheme}:// has no model {name!r}')
    url = table[name]
    if not url.startswith(_HTTP):  # a file under mmengine's home
        url = osp.join(mmengine_checkpoint._get_mmengine_home(), url)
    return url


def load_checkpoint(filename: str,
                    map_location: MapLocation = None,
                    *,
                    trust: Optional[bool] = None) -> Any:
    """Read a checkpoint without running code from it (see the module
    docstring).

    Args:
        filename: a local path (``~`` expanded), an ``http(s)://`` URL
            (downloaded to the torch hub cache, then read like a local
            file), ``package://<module>/<path>``, mmengine's model-zoo names
            (``torchvision://``, ``open-mmlab://``, ``mmcls://``), or any
            other URI that ``mmengine.fileio`` reads (``s3://`` ...).
        map_location: as in :func:`torch.load`.
        trust: read with ``weights_only=False`` (logs a warning); None
            follows ``MMUPV2_TRUST_CHECKPOINTS``.

    Returns:
        The unpickled object (an mmengine checkpoint dict, a state dict ...).

    Raises:
        FileNotFoundError: no such local file (the message names it).
        UnsafeCheckpointError: the file holds objects outside the
            allow-list (names the file and the opt-in).
    """
    if not isinstance(filename, str):
        raise TypeError(f'a checkpoint path must be a str, got {filename!r}')
    source = filename
    if filename.startswith(PACKAGE_SCHEME):
        filename = resolve_package_path(filename)
    url = _model_zoo_url(filename)
    if url is not None:
        checkpoint = load_checkpoint(url, map_location, trust=trust)
        if filename.startswith('mmcls://'):
            checkpoint = mmengine_checkpoint._process_mmcls_checkpoint(
                checkpoint)
        return checkpoint
    if filename.startswith(_HTTP):
        local = download_checkpoint(filename)
        return _torch_load(local, f'{source} (downloaded to {local})',
                           map_location, trust)
    if '://' in filename:  # s3://, petrel:// ...: bytes via mmengine.fileio
        from mmengine.fileio import get
        return _torch_load(
            io.BytesIO(get(filename)), source, map_location, trust)
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename} can not be found')
    return _torch_load(filename, source, map_location, trust)


# ------------------------------------------------ mmengine, for a while
#: ``trust`` of the enclosing ``safe_checkpoint_loading`` blocks.
_SCOPE_TRUST: List[Optional[bool]] = []


def checkpoint_loading_is_safe() -> bool:
    """Whether mmengine's loads are now read by :func:`load_checkpoint`,
    i.e. whether a :func:`safe_checkpoint_loading` block is open."""
    return bool(_SCOPE_TRUST)


@contextlib.contextmanager
def safe_checkpoint_loading(trust: Optional[bool] = None) -> Iterator[None]:
    """Within the block, mmengine's ``CheckpointLoader`` reads every path
    with :func:`load_checkpoint` (Runner ``resume`` / ``load_from``,
    ``init_cfg=dict(type='Pretrained')``, ``mmengine.runner.load_checkpoint``).
    The previous loaders come back on exit (loaders registered meanwhile
    are kept).

    Example::

        >>> with safe_checkpoint_loading():
        ...     runner.train()   # resume reads the file weights-only

    Args:
        trust: passed to :func:`load_checkpoint`; None inherits the choice
            of an enclosing block (e.g. ``tools/train.py --trust-checkpoint``
            around the model's own block in ``UniPerceiverV2.init_weights``).
    """
    if trust is None and _SCOPE_TRUST:
        trust = _SCOPE_TRUST[-1]

    def load_from_mmupv2(filename, map_location=None):
        return load_checkpoint(filename, map_location, trust=trust)

    saved = OrderedDict(CheckpointLoader._schemes)
    CheckpointLoader._schemes = OrderedDict(
        (prefix, load_from_mmupv2) for prefix in saved)
    _SCOPE_TRUST.append(trust)
    try:
        yield
    finally:
        _SCOPE_TRUST.pop()
        for prefix, loader in CheckpointLoader._schemes.items():
            if loader is not load_from_mmupv2:  # registered in the block
                saved[prefix] = loader
        CheckpointLoader._schemes = OrderedDict(
            sorted(saved.items(), key=lambda t: t[0], reverse=True))

