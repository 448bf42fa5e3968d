# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Variable-size batches of one entry for mixed sampling."""
import math
from collections import deque
from itertools import islice
from typing import Iterator, List, Optional

from torch.utils.data import Sampler


class MixedBatchSampler:
    """The batches one entry gives the mixed steps that hold it.

    ``MultiTaskLoop`` puts it in every entry's data loader under
    ``sampling='mixed'`` (``batch_sampler``, built by mmengine's
    ``Runner.build_dataloader`` with the entry's ``sampler`` and
    ``batch_size``). The batch of a step has as many samples as
    :class:`~mmupv2.engine.runner.task_schedule.MixedSchedule` gives the
    entry in that step; the loader's ``collate_fn`` and workers are the
    entry's own. The indices come from ``sampler`` in its order; a finite
    sampler is restarted when exhausted, so batches never end and a batch
    may span two passes over the data.

    Call :meth:`start` before iterating: the sizes of the steps from the
    first trained iteration on, and how many indices the steps before it
    took (a resumed run skips them without loading a sample). Both stay
    with the sampler, so a data loader iterator restarted later continues
    the same stream.

    Args:
        sampler: the entry's sampler (``InfiniteSampler`` recommended).
        batch_size: the entry's per-GPU batch size under unmixed sampling
            (:math:`b_k`); read for the mixed shares, ``len()`` and
            mmengine's batch-size look-ups.
    """

    def __init__(self, sampler: Sampler, batch_size: int) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got '
                             f'{batch_size!r}')
        self.sampler = sampler
        self.batch_size = batch_size
        self._sizes: Optional[Iterator[int]] = None
        self._skip = 0
        self._indices: Optional[Iterator[int]] = None

    def start(self, sizes: Iterator[int], skip: int = 0) -> None:
        """Set the batch sizes to give and the indices to skip first.

        Args:
            sizes: the sample counts of the entry's coming batches.
            skip: indices taken by the steps before the first one.
        """
        self._sizes = sizes
        self._skip = int(skip)
        self._indices = None

    def _index_stream(self) -> Iterator[int]:
        if len(self.sampler) == 0:
            raise ValueError('MixedBatchSampler: the sampler is empty')
        while True:
            yield from self.sampler

    def __iter__(self) -> Iterator[List[int]]:
        if self._sizes is None:
            raise RuntimeError('MixedBatchSampler: call start() before '
                               'iterating (MultiTaskLoop does)')
        if self._indices is None:
            self._indices = self._index_stream()
            deque(islice(self._indices, self._skip), maxlen=0)
        for size in self._sizes:
            yield list(islice(self._indices, size))

    def __len__(self) -> int:
        """Batches of ``batch_size`` in one pass over the sampler (the
        batches themselves are of the mixed sizes)."""
        return math.ceil(len(self.sampler) / self.batch_size)
