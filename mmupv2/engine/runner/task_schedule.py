# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Which task an iteration trains under unmixed sampling."""
import math
from typing import Any, List, Sequence

import numpy as np


def check_sampling_ratio(name: str, value: Any) -> float:
    """The ``sampling_ratio`` of entry ``name`` of ``train_dataloader``, as
    a float; a value that is not a finite number >= 0 (``nan`` would make
    the schedule pick one task for ever, silently) raises.

    Raises:
        ValueError: names the key and the value.
    """
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        ratio = math.nan
    if not math.isfinite(ratio) or ratio < 0:
        raise ValueError(
            f"train_dataloader['{name}'].sampling_ratio={value!r}: the "
            'sampling ratio s_k of a task must be a finite number >= 0 (the '
            'ratios are normalised to sum to one)')
    return ratio


def normalise_ratios(ratios: Sequence[float]) -> List[float]:
    """Scale non-negative sampling ratios to sum to one.

    Raises:
        ValueError: a ratio is negative or not finite, or all are zero.
    """
    ratios = [float(r) for r in ratios]
    if any(not math.isfinite(r) or r < 0
           for r in ratios) or sum(ratios) <= 0:
        raise ValueError(
            f'sampling ratios must be finite, >= 0 and not all 0, got '
            f'{ratios}')
    total = sum(ratios)
    return [r / total for r in ratios]


def scheduled_entry(seed: int, iteration: int,
                    ratios: Sequence[float]) -> int:
    """The index of the task entry that trains at ``iteration``.

    A pure function of ``(seed, iteration)``: every rank computes the same
    answer without communication, and a resumed run continues the same
    schedule. Entry ``k`` is drawn with probability ``ratios[k]`` (they must
    sum to one; see :func:`normalise_ratios`).
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(iteration)])
    u = rng.random()
    cumulative = np.cumsum(ratios)
    return int(min(np.searchsorted(cumulative, u, side='right'),
                   len(ratios) - 1))

