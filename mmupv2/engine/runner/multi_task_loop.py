# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Multi-task training: one data loader per (task, data set), unmixed or
mixed sampling, and MT-AdamW's per-task balancing (paper Sec. 4.4)."""
import contextlib
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Dict, Iterator, List, Optional, Union

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner.loops import (
    IterBasedTrainLoop,
    _InfiniteDataloaderIterator,
)
from torch.utils.data import DataLoader

from mmupv2.engine.hooks import DataOnlyCheckpointHook, RandomStateHook
from mmupv2.engine.optimizers import MultiTaskOptimizer
from mmupv2.registry import LOOPS
from mmupv2.utils.random_state import preserved_random_state

from .task_schedule import (
    check_sampling_ratio,
    normalise_ratios,
    scheduled_entry,
)

SAMPLING_MODES = ('unmixed', 'mixed')


@dataclass
class TaskEntry:
    """One sampling unit: a data set of a task with its own loader.

    Attributes:
        name: the entry's name (the key in ``train_dataloader``).
        task: the task of its samples (the data set's ``task``).
        sampling_ratio: :math:`s_k`, normalised over all entries.
        loss_weight: :math:`\\omega_k`.
        dataloader: its data loader (own data set, pipeline, batch size).
    """
    name: str
    task: str
    sampling_ratio: float
    loss_weight: float
    dataloader: DataLoader


@dataclass
class MultiTaskBatch:
    """What one iteration trains: one entry (unmixed) or all (mixed).

    Attributes:
        iteration: the iteration the batch was drawn for.
        entries: the entries of the iteration.
        batches: one collated batch per entry.
    """
    iteration: int
    entries: List[TaskEntry]
    batches: List[dict]


class _MultiTaskDatasetView:
    """What the Runner reads of ``train_dataloader.dataset``: the meta
    information of every entry's data set, keyed by entry name."""

    def __init__(self, entries: List[TaskEntry]) -> None:
        self.metainfo = {
            e.name: dict(getattr(e.dataloader.dataset, 'metainfo', {}),
                         task=e.task)
            for e in entries
        }


class MultiTaskDataloaders:
    """The loop's ``dataloader``: all entries, iterated by the schedule.

    Iterating it yields one :class:`MultiTaskBatch` per iteration, forever:
    under ``'unmixed'`` sampling the batch of the entry
    :func:`~mmupv2.engine.runner.task_schedule.scheduled_entry` picks for
    ``(seed, iteration)``; under ``'mixed'`` a batch of every entry. Each
    entry's loader is started on first use and restarted when exhausted (use
    ``InfiniteSampler``). The seed is read on the first ``next()``, i.e.
    after a checkpoint has been resumed.

    Resume: set :attr:`start_iteration` first. The iterator then yields
    ``None`` for the iterations before it (mmengine's ``IterBasedTrainLoop``
    draws and discards that many items when it resumes) and advances each
    entry's batch sampler past the batches the entry gave in those
    iterations *without loading them*. With ``InfiniteSampler`` (whose index
    stream persists across ``iter()``) the samples after resume are exactly
    those of an uninterrupted run; see :meth:`_start`.

    For the Runner: ``dataset.metainfo`` is ``{entry name: metainfo}`` (saved
    in checkpoints as ``dataset_meta``), ``len()`` the sum of the entries'
    lengths (the loop is iteration-based; epochs have no meaning here).
    """

    def __init__(self, entries: List[TaskEntry], sampling: str,
                 seed: Callable[[], int]) -> None:
        self.entries = entries
        self.sampling = sampling
        self._seed = seed
        self.dataset = _MultiTaskDatasetView(entries)
        self.start_iteration = 0

    def __len__(self) -> int:
        return sum(len(e.dataloader) for e in self.entries)

    def _chosen(self, seed: int, iteration: int) -> List[int]:
        if self.sampling == 'unmixed':
            ratios = [e.sampling_ratio for e in self.entries]
            return [scheduled_entry(seed, iteration, ratios)]
        return list(range(len(self.entries)))

    @staticmethod
    def _start(loader: DataLoader,
               num_batches: int) -> _InfiniteDataloaderIterator:
        """An infinite iterator over ``loader`` that starts after its first
        ``num_batches`` batches.

        With mmengine's ``InfiniteSampler`` and plain batching the skipped
        indices are drawn from the sampler's persistent index stream without
        loading any sample; otherwise (a finite sampler, a custom batch
        sampler) the batches are drawn and discarded, as mmengine does.
        """
        # Nothing here moves the generators training draws from (torch's
        # CPU one, numpy's, Python's, the loader's own): starting an
        # iterator draws a base seed, and the skipped batches were drawn
        # before the checkpoint. So an entry started late (first used, or
        # after a resume) leaves the stream as it is (RandomStateHook).
        with preserved_random_state([loader.generator]):
            indices = getattr(loader.sampler, 'indices', None)
            if loader.batch_size is not None and isinstance(
                    indices, Generator):
                deque(islice(indices, num_batches * loader.batch_size),
                      maxlen=0)
                return _InfiniteDataloaderIterator(loader)
            iterator = _InfiniteDataloaderIterator(loader)
            for _ in range(num_batches):
                next(iterator)
            return iterator

    def __iter__(self) -> Iterator[Optional[MultiTaskBatch]]:
        seed = self._seed()
        start = self.start_iteration
        done = [0] * len(self.entries)  # batches given before ``start``
        for iteration in range(start):
            for k in self._chosen(seed, iteration):
                done[k] += 1
            yield None  # discarded by IterBasedTrainLoop's resume
        iterators: Dict[int, _InfiniteDataloaderIterator] = {}
        iteration = start
        while True:
            chosen = self._chosen(seed, iteration)
            batches = []
            for k in chosen:
                if k not in iterators:
                    iterators[k] = self._start(self.entries[k].dataloader,
                                               done[k])
                batches.append(next(iterators[k]))
            yield MultiTaskBatch(iteration,
                                 [self.entries[k] for k in chosen], batches)
            iteration += 1


@LOOPS.register_module()
class MultiTaskLoop(IterBasedTrainLoop):
    """Iteration-based training over several tasks and data sets.

    Config::

        train_dataloader = dict(
            imagenet=dict(sampling_ratio=0.1, loss_weight=1.0,
                          dataloader=dict(batch_size=28, dataset=...,
                                          sampler=dict(type='InfiniteSampler'))),
            coco_det=dict(sampling_ratio=0.1, loss_weight=0.5,
                          dataloader=dict(...)),
            ...)
        train_cfg = dict(type='MultiTaskLoop', sampling='unmixed',
                         max_iters=150000, val_interval=5000)

    Each key of ``train_dataloader`` is an *entry* (a data set of a task,
    Table 8's rows): its own data set, pipeline, batch size, sampling ratio
    :math:`s_k` and loss weight :math:`\\omega_k`. The task comes from the
    data set (``dataset.task``). Ratios are normalised to sum to one.

    **What does** :math:`s_k` **mean under unmixed sampling?** It is the
    probability that an iteration trains entry :math:`k`, i.e. the expected
    fraction of *iterations* (not of samples) spent on it; every rank trains
    the same entry in that iteration with the entry's per-GPU batch size, so
    the entry sees about :math:`s_k \\cdot \\text{iters} \\cdot
    \\text{batch}_k \\cdot \\text{GPUs}` samples. A task's share is the sum of
    its data sets' :math:`s_k`. MT-AdamW divides the moment updates by the
    same :math:`s_k` so that a rarely sampled task is not drowned in the
    moments by frequent ones (see :class:`~mmupv2.engine.optimizers.MTAdamW`).

    Sampling:
        - ``'unmixed'`` (the paper's): one entry per iteration, the same on
          every rank, a pure function of ``(seed, iteration)``; ``seed``
          defaults to the Runner's (shared by all ranks, restored on resume).
          Before the update the loop calls
          ``optimizer.set_task(sampling_ratio=s_k, scale=w_k)`` if the
          optimizer is a
          :class:`~mmupv2.engine.optimizers.MultiTaskOptimizer`
          (MT-AdamW); otherwise (plain AdamW, the ablation) it multiplies
          the loss by :math:`\\omega_k`.
        - ``'mixed'`` (Table 4's baseline): every entry in every iteration;
          the losses, weighted by :math:`\\omega_k`, are back-propagated one
          entry at a time (DDP synchronises on the last) and the optimizer
          steps once, with ``set_task(1, 1)``.

    Resume: the iteration is restored by the Runner; the schedule being a
    function of the iteration, the same entries follow, and each loader's
    sampler is advanced past the batches it already gave, without loading
    them (see :class:`MultiTaskDataloaders`). The random generators (torch
    CPU / CUDA, numpy, Python, the loaders' own) are saved in every
    checkpoint and restored by
    :class:`~mmupv2.engine.hooks.RandomStateHook`, which the loop registers
    unless the config does: a resumed run is bitwise the uninterrupted one
    (``tests/test_tools/test_resume_bitwise.py``).

    Logging: the message hub's runtime info ``train_task`` holds the entry
    name(s) of the iteration (``MultiTaskLogProcessor`` prints it), and the
    outputs carry ``loss_<entry>``, so the log shows a running (windowed)
    loss per entry next to the task-prefixed loss terms of the model.

    Args:
        runner: the Runner.
        dataloader: ``train_dataloader``: ``{entry name: dict(dataloader=...,
            sampling_ratio=1.0, loss_weight=1.0)}``.
        max_iters: total iterations.
        sampling: ``'unmixed'`` or ``'mixed'``.
        seed: schedule seed; ``None`` uses ``runner.seed``.
        val_begin, val_interval, dynamic_intervals: as in
            ``IterBasedTrainLoop``.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[Dict, MultiTaskDataloaders],
                 max_iters: int,
                 sampling: str = 'unmixed',
                 seed: Union[int, None] = None,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals=None) -> None:
        if sampling not in SAMPLING_MODES:
            raise ValueError(f'MultiTaskLoop: sampling must be one of '
                             f'{SAMPLING_MODES}, got {sampling!r}')
        self.sampling = sampling
        self._schedule_seed = seed
        self._runner = runner  # build_entries needs it
        if not isinstance(dataloader, MultiTaskDataloaders):
            dataloader = MultiTaskDataloaders(
                self.build_entries(dataloader), sampling, self._get_seed)
        super().__init__(runner, dataloader, max_iters, val_begin,
                         val_interval, dynamic_intervals)
        if not any(
                isinstance(h, RandomStateHook) for h in runner.hooks):
            runner.register_hook(RandomStateHook())
        # checkpoints of plain data: weights-only loads resume them
        if not any(
                isinstance(h, DataOnlyCheckpointHook) for h in runner.hooks):
            runner.register_hook(DataOnlyCheckpointHook())

    @property
    def entries(self) -> List[TaskEntry]:
        return self.dataloader.entries

    def _get_seed(self) -> int:
        seed = self._schedule_seed
        if seed is None:
            seed = self.runner.seed
        return int(seed)

    def build_entries(self, cfg: Dict) -> List[TaskEntry]:
        """Build every entry's data loader from ``train_dataloader``."""
        if not isinstance(cfg, dict) or not cfg:
            raise TypeError(
                'MultiTaskLoop: train_dataloader must be a non-empty dict '
                '{entry name: dict(dataloader=..., sampling_ratio=..., '
                f'loss_weight=...)}}, got {type(cfg).__name__}')
        # mmengine has no public accessor for `randomness.diff_rank_seed`;
        # its own BaseLoop reads it from runner._randomness_cfg as well
        diff_rank_seed = self.runner._randomness_cfg.get(
            'diff_rank_seed', False)
        names, loaders, ratios, weights = [], [], [], []
        for name, entry in cfg.items():
            if not isinstance(entry, dict) or 'dataloader' not in entry:
                raise KeyError(f"MultiTaskLoop: train_dataloader['{name}'] "
                               "needs a 'dataloader' dict")
            unknown = set(entry) - {'dataloader', 'sampling_ratio',
                                    'loss_weight'}
            if unknown:
                raise KeyError(f"MultiTaskLoop: train_dataloader['{name}'] "
                               f'has unknown keys {sorted(unknown)}')
            ratio = check_sampling_ratio(name,
                                         entry.get('sampling_ratio', 1.0))
            loader = entry['dataloader']
            if isinstance(loader, dict):
                loader = self.runner.build_dataloader(
                    loader, seed=self.runner.seed,
                    diff_rank_seed=diff_rank_seed)
            names.append(name)
            loaders.append(loader)
            ratios.append(ratio)
            weights.append(float(entry.get('loss_weight', 1.0)))
        try:
            ratios = normalise_ratios(ratios)
        except ValueError as e:
            raise ValueError(f'MultiTaskLoop: {e} (entries {names})') from e
        entries = []
        for name, loader, ratio, weight in zip(names, loaders, ratios,
                                               weights):
            task = getattr(loader.dataset, 'task', None)
            if task is None:
                raise AttributeError(
                    f"MultiTaskLoop: the data set of entry '{name}' "
                    f'({type(loader.dataset).__name__}) has no `task`; use an '
                    'mmupv2 data set')
            entries.append(TaskEntry(name, task, ratio, weight, loader))
        return entries

    def run(self):
        """Train; on resume, let the loaders skip what was trained."""
        self.dataloader.start_iteration = self._iter
        return super().run()

    def run_iter(self, data_batch: MultiTaskBatch) -> None:
        """Train one iteration on the entries of ``data_batch``."""
        names = [e.name for e in data_batch.entries]
        self.runner.message_hub.update_info('train_task', ','.join(names))
        hook_batch = data_batch.batches[0] if len(names) == 1 else dict(
            zip(names, data_batch.batches))
        self.runner.call_hook(
            'before_train_iter', batch_idx=self._iter, data_batch=hook_batch)
        outputs = self.train_step(data_batch)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=self._iter,
            data_batch=hook_batch,
            outputs=outputs)
        self._iter += 1

    def train_step(self, data_batch: MultiTaskBatch) -> Dict[str, float]:
        """Forward, backward and update for the iteration's entries.

        Returns:
            dict: the log variables of every entry plus ``loss_<entry>``.
        """
        model = self.runner.model
        module = model.module if is_model_wrapper(model) else model
        optim_wrapper = self.runner.optim_wrapper
        optimizer = optim_wrapper.optimizer
        balances = isinstance(optimizer, MultiTaskOptimizer)
        unmixed = len(data_batch.entries) == 1 and self.sampling == 'unmixed'
        log_vars: Dict[str, float] = {}
        last = len(data_batch.entries) - 1
        for i, (entry, batch) in enumerate(
                zip(data_batch.entries, data_batch.batches)):
            # DDP: synchronise gradients only on the last backward
            sync = contextlib.nullcontext() if i == last or not hasattr(
                model, 'no_sync') else model.no_sync()
            with sync:
                with optim_wrapper.optim_context(model):
                    data = module.data_preprocessor(batch, True)
                    losses = model(**data, mode='loss')
                loss, entry_log = module.parse_losses(losses)
                if not (balances and unmixed):
                    loss = loss * entry.loss_weight
                optim_wrapper.backward(optim_wrapper.scale_loss(loss))
                if i != last:
                    _uncount_backward(optim_wrapper)
            log_vars.update(entry_log)
            log_vars[f'loss_{entry.name}'] = entry_log['loss']
        if balances:
            entry = data_batch.entries[0]
            if unmixed:
                optimizer.set_task(
                    sampling_ratio=entry.sampling_ratio,
                    scale=entry.loss_weight)
            else:
                optimizer.set_task(sampling_ratio=1.0, scale=1.0)
        if optim_wrapper.should_update():
            optim_wrapper.step()
            optim_wrapper.zero_grad()
        return log_vars


def _uncount_backward(optim_wrapper: OptimWrapper) -> None:
    """Make the backward pass just run not count as an accumulation step.

    Mixed sampling back-propagates one entry at a time and updates once per
    iteration, but ``OptimWrapper.backward`` counts every call (the count
    drives ``should_update``, ``should_sync`` and ``scale_loss`` under
    gradient accumulation). mmengine offers no public way to run several
    backward passes as one step, so this undoes the count of the private
    ``_inner_count`` that every optim wrapper (``AmpOptimWrapper``
    included) increments.
    """
    optim_wrapper._inner_count -= 1
