# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The random number generators of a training process, as plain data.

What draws random numbers while training (in the main process):

- torch's default CPU generator (``torch.randint`` of MLM masking and of the
  sampled class-name / caption synonyms, denoising noise, point sampling,
  the base seed a ``DataLoader`` iterator draws when it starts) and, on a
  GPU, the current device's CUDA generator (the MoE gate noise
  ``torch.randn_like`` runs where the logits are);
- numpy's and Python's global generators (mmcv / mmdet / mmpretrain
  transforms with ``num_workers=0``);
- a ``DataLoader``'s own ``generator``, if it has one.

:func:`get_random_state` captures them as tensors, tuples and ints only, so
a checkpoint holding them loads under ``torch.load(weights_only=True)``;
:func:`set_random_state` puts them back; :func:`preserved_random_state` runs
a block without moving them. See
:class:`~mmupv2.engine.hooks.RandomStateHook`.
"""
import contextlib
import random
from typing import Any, Dict, Iterator, Optional, Sequence

import numpy as np
import torch

RandomState = Dict[str, Any]


def _numpy_state() -> tuple:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return (str(name), torch.from_numpy(keys.astype(np.int64)), int(pos),
            int(has_gauss), float(cached))


def _python_state() -> tuple:
    version, internal, gauss_next = random.getstate()
    return (int(version), torch.tensor(internal, dtype=torch.int64),
            gauss_next)


def get_random_state(cuda: bool = True) -> RandomState:
    """The state of torch's (CPU and current CUDA device), numpy's and
    Python's global generators.

    Args:
        cuda: include the current CUDA device's generator, when CUDA is
            initialised (a process that never used CUDA drew nothing there).

    Returns:
        dict: ``torch`` (uint8 tensor), ``cuda`` (uint8 tensor or ``None``),
        ``numpy`` (``(name, int64 tensor (624,), pos, has_gauss, cached)``),
        ``python`` (``(version, int64 tensor (625,), gauss_next)``).
    """
    cuda_state = None
    if cuda and torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_state = torch.cuda.get_rng_state()
    return dict(
        torch=torch.get_rng_state(),
        cuda=cuda_state,
        numpy=_numpy_state(),
        python=_python_state())


def set_random_state(state: RandomState) -> None:
    """Restore what :func:`get_random_state` captured.

    Raises:
        KeyError: ``state`` misses one of ``torch``, ``numpy``, ``python``.
    """
    missing = {'torch', 'numpy', 'python'} - set(state)
    if missing:
        raise KeyError(f'random state: missing {sorted(missing)} (has '
                       f'{sorted(state)})')
    torch.set_rng_state(state['torch'])
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(
        np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss_next = state['python']
    random.setstate((int(version), tuple(int(v) for v in internal),
                     gauss_next))


@contextlib.contextmanager
def preserved_random_state(
        generators: Sequence[Optional[torch.Generator]] = ()
) -> Iterator[None]:
    """Run a block without moving the global generators (torch CPU, numpy,
    Python) nor ``generators`` (``None`` items are skipped)."""
    state = get_random_state(cuda=False)
    own = [(g, g.get_state()) for g in generators if g is not None]
    try:
        yield
    finally:
        set_random_state(state)
        for g, g_state in own:
            g.set_state(g_state)
