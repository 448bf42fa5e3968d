# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Which task an iteration trains: one entry per iteration (unmixed
sampling), or every entry's share of one batch (mixed sampling)."""
import math
from typing import Any, Dict, Iterator, List, Mapping, Sequence

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


def entry_sampling_ratios(entries: Mapping[str, Mapping]) -> Dict[str, float]:
    """The normalised :math:`s_k` of every entry of a multi-task
    ``train_dataloader`` (``{entry name: dict(sampling_ratio=..., ...)}``;
    a missing ``sampling_ratio`` is 1).

    Raises:
        ValueError: a ratio is not a finite number >= 0 (names the entry),
            or all are zero (names the entries).
    """
    names = list(entries)
    ratios = [
        check_sampling_ratio(name, entry.get('sampling_ratio', 1.0))
        for name, entry in entries.items()
    ]
    try:
        ratios = normalise_ratios(ratios)
    except ValueError as e:
        raise ValueError(f'MultiTaskLoop: {e} (entries {names})') from e
    return dict(zip(names, ratios))


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


def unmixed_iterations(seed: int, num_iters: int,
                       ratios: Sequence[float]) -> List[int]:
    """How many of the iterations ``0 .. num_iters - 1`` each entry trains
    under unmixed sampling: the counts of :func:`scheduled_entry`, exactly
    as the run draws them (about ``ratios[k] * num_iters``)."""
    counts = [0] * len(ratios)
    for iteration in range(num_iters):
        counts[scheduled_entry(seed, iteration, ratios)] += 1
    return counts


#: 2**32 / golden ratio, rounded to an odd integer: ``u * FIBONACCI_HASH mod
#: 2**32`` spreads consecutive integers ``u`` evenly over ``[0, 2**32)``
#: (Knuth's multiplicative hashing, the golden-ratio Weyl sequence).
FIBONACCI_HASH = 2654435769
_UNITS_PER_CHUNK = 1 << 20


def mixed_shares(ratios: Sequence[float],
                 batch_sizes: Sequence[int]) -> List[float]:
    """Each entry's share of the samples of a mixed batch.

    Entry ``k`` gets a fraction :math:`s_k` of a rank's *batch capacity*:
    :math:`s_k b_k` samples per step, where :math:`b_k` is its per-GPU
    batch size under unmixed sampling (Table 8). Its share of the samples
    is therefore :math:`s_k b_k / \\sum_j s_j b_j`, which is :math:`s_k`
    when all entries have the same batch size.

    Args:
        ratios: :math:`s_k`, normalised (see :func:`normalise_ratios`).
        batch_sizes: :math:`b_k`, positive.

    Returns:
        list[float]: the shares, summing to one.
    """
    if len(ratios) != len(batch_sizes):
        raise ValueError(f'{len(ratios)} ratios for {len(batch_sizes)} '
                         'batch sizes')
    if any(int(b) < 1 for b in batch_sizes):
        raise ValueError(f'batch sizes must be >= 1, got {list(batch_sizes)}')
    return normalise_ratios([r * b for r, b in zip(ratios, batch_sizes)])


def default_mixed_batch_size(ratios: Sequence[float],
                             batch_sizes: Sequence[int]) -> int:
    """The per-rank samples of a mixed step when ``train_cfg`` gives no
    ``mixed_batch_size``: :math:`\\sum_k s_k b_k` rounded (at least 1), the
    expected per-rank batch of an unmixed step of the same config."""
    return max(1, round(sum(r * b for r, b in zip(ratios, batch_sizes))))


class MixedSchedule:
    """How many samples of each entry the mixed step ``t`` holds.

    Every step has exactly ``batch_size`` samples per rank (the same on
    every rank). Sample slot ``u`` (counted over the whole run, ``u = t *
    batch_size + j``) belongs to the entry whose interval of ``[0, 1)``
    (of length ``shares[k]``, in entry order) holds the point
    :math:`\\{(u + \\text{seed}) / \\varphi\\}` of the golden-ratio Weyl
    sequence, computed exactly in 32-bit integers. So:

    - entry ``k`` has about ``shares[k] * batch_size`` samples in every
      step (an entry whose expected count is below one appears in that
      fraction of the steps), and over ``T`` steps
      ``shares[k] * batch_size * T`` up to a few samples (the sequence's
      discrepancy grows like ``log T``; measured with the paper's Table 8
      shares over 10^5 steps: at most 2.4 samples off);
    - the schedule is a pure function of ``(seed, t)``: all ranks agree
      without communication, and :meth:`counts_before` tells a resumed run
      how many samples each entry gave, without replaying the steps.

    Args:
        shares: each entry's share of the samples (see
            :func:`mixed_shares`); normalised here.
        batch_size: samples per rank and step (``mixed_batch_size``).
        seed: offsets the sequence (the run's schedule seed).
    """

    def __init__(self, shares: Sequence[float], batch_size: int,
                 seed: int) -> None:
        if int(batch_size) < 1:
            raise ValueError(f'mixed_batch_size must be >= 1, got '
                             f'{batch_size}')
        self.shares = normalise_ratios(shares)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        edges = np.round(np.cumsum(self.shares) * 2.0**32).astype(np.uint64)
        edges[-1] = 1 << 32
        self._edges = edges

    @property
    def expected(self) -> List[float]:
        """The expected samples of each entry per step and rank
        (:math:`\\lambda_k`)."""
        return [share * self.batch_size for share in self.shares]

    def _entries(self, start: int, stop: int) -> np.ndarray:
        """The entry of every sample slot in ``[start, stop)``."""
        slots = np.arange(start, stop, dtype=np.uint64) + np.uint64(
            self.seed & 0xFFFFFFFF)
        # uint64 products wrap modulo 2**64, which keeps the low 32 bits
        points = (slots * np.uint64(FIBONACCI_HASH)) & np.uint64(0xFFFFFFFF)
        return np.searchsorted(self._edges, points, side='right')

    def counts_range(self, start: int, stop: int) -> np.ndarray:
        """Samples per entry of the steps ``start, ..., stop - 1``.

        Returns:
            np.ndarray: ``(stop - start, K)`` int64.
        """
        steps = max(0, stop - start)
        entries = self._entries(start * self.batch_size,
                                stop * self.batch_size)
        num = len(self.shares)
        rows = np.repeat(np.arange(steps, dtype=np.int64), self.batch_size)
        return np.bincount(rows * num + entries,
                           minlength=steps * num).reshape(steps, num)

    def counts(self, iteration: int) -> List[int]:
        """Samples per entry of step ``iteration``; they sum to
        ``batch_size``."""
        return self.counts_range(iteration, iteration + 1)[0].tolist()

    def counts_before(self, iteration: int) -> List[int]:
        """Samples per entry of all the steps before ``iteration``."""
        total = np.zeros(len(self.shares), dtype=np.int64)
        stop = iteration * self.batch_size
        for start in range(0, stop, _UNITS_PER_CHUNK):
            entries = self._entries(start, min(stop, start + _UNITS_PER_CHUNK))
            total += np.bincount(entries, minlength=len(self.shares))
        return total.tolist()

    def sizes(self, entry: int, start: int,
              chunk: int = 256) -> Iterator[int]:
        """The sample counts of ``entry`` in the steps from ``start`` on
        that hold it (an endless iterator)."""
        if self.shares[entry] <= 0:
            return
        while True:
            for count in self.counts_range(start, start + chunk)[:, entry]:
                if count:
                    yield int(count)
            start += chunk


def first_entry_per_task(train_dataloader: dict) -> List[dict]:
    """The first entry of each task of a ``train_dataloader`` config (dict
    of entries), with its per-GPU batch size and normalised ``s_k`` and
    ``w_k``, as :class:`MultiTaskLoop` reads them.

    Returns:
        list[dict]: ``name``, ``task``, ``sampling_ratio``,
        ``loss_weight``, ``batch_size`` and the entry's ``dataloader``
        config, in the order of the entries.
    """
    from mmupv2.registry import DATASETS
    names = list(train_dataloader)
    ratios = normalise_ratios([
        train_dataloader[n].get('sampling_ratio', 1.0) for n in names
    ])
    entries, seen = [], set()
    for name, ratio in zip(names, ratios):
        entry = train_dataloader[name]
        dataset = entry['dataloader']['dataset']
        task = dataset.get('task') or DATASETS.get(
            dataset['type']).default_task
        if task in seen:
            continue
        seen.add(task)
        entries.append(dict(name=name, task=task, sampling_ratio=ratio,
                            loss_weight=entry.get('loss_weight', 1.0),
                            batch_size=entry['dataloader']['batch_size'],
                            dataloader=entry['dataloader']))
    return entries
