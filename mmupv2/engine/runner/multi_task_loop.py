# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Multi-task training: one data loader per (task, data set), unmixed or
mixed sampling, and MT-AdamW's per-task balancing (paper Sec. 4.4)."""
import contextlib
import logging
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch
from mmengine._strategy.deepspeed import MMDeepSpeedEngineWrapper
from mmengine.dist import all_reduce
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner.loops import (
    IterBasedTrainLoop,
    _InfiniteDataloaderIterator,
)
from torch.utils.data import DataLoader

from mmupv2.engine.hooks import (
    DataOnlyCheckpointHook,
    FiniteCheckpointHook,
    RandomStateHook,
)
from mmupv2.engine.optimizers import (
    MultiTaskDeepSpeedOptimWrapper,
    MultiTaskOptimizer,
    find_multi_task_optimizer,
)
from mmupv2.registry import LOOPS
from mmupv2.utils.random_state import preserved_random_state

from .grad_sharding import configure_grad_sharding
from .mixed_batch_sampler import MixedBatchSampler
from .runner import check_checkpoint_loading
from .task_schedule import (
    MixedSchedule,
    default_mixed_batch_size,
    entry_sampling_ratios,
    mixed_shares,
    scheduled_entry,
)

SAMPLING_MODES = ('unmixed', 'mixed')
#: ``MultiTaskLoop(non_finite_loss=...)``
NON_FINITE_MODES = ('skip', 'raise')


class NonFiniteLossError(FloatingPointError):
    """A training loss is NaN or infinite (``non_finite_loss='raise'``, or
    too many skipped iterations in a row); the message names the
    iteration, the entry, its task and the non-finite loss terms."""


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
    """What one iteration trains: one entry (unmixed) or the entries of a
    mixed batch.

    Attributes:
        iteration: the iteration the batch was drawn for.
        entries: the entries of the iteration.
        batches: one collated batch per entry.
        num_samples: mixed sampling: each entry's samples in the batch
            (:math:`n_k`); ``None`` under unmixed sampling.
        expected_samples: mixed sampling: each entry's expected samples per
            step (:math:`\\lambda_k`); ``None`` under unmixed sampling.
    """
    iteration: int
    entries: List[TaskEntry]
    batches: List[dict]
    num_samples: Optional[List[int]] = None
    expected_samples: Optional[List[float]] = None


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
    ``(seed, iteration)``; under ``'mixed'`` one batch of every entry that
    :class:`~mmupv2.engine.runner.task_schedule.MixedSchedule` gives
    samples in that iteration, of that many samples (each entry's loader
    draws them through its
    :class:`~mmupv2.engine.runner.mixed_batch_sampler.MixedBatchSampler`).
    Each entry's loader is started on first use and restarted when
    exhausted (use ``InfiniteSampler``). The seed is read on the first
    ``next()``, i.e. after a checkpoint has been resumed.

    Resume: set :attr:`start_iteration` first. The iterator then yields
    ``None`` for the iterations before it (mmengine's ``IterBasedTrainLoop``
    draws and discards that many items when it resumes) and advances each
    entry's sampler past the samples the entry gave in those iterations
    *without loading them*. With ``InfiniteSampler`` (whose index stream
    persists across ``iter()``) the samples after resume are exactly those
    of an uninterrupted run; see :meth:`_start`.

    For the Runner: ``dataset.metainfo`` is ``{entry name: metainfo}`` (saved
    in checkpoints as ``dataset_meta``), ``len()`` the sum of the entries'
    lengths (the loop is iteration-based; epochs have no meaning here).

    Args:
        entries: the entries.
        sampling: ``'unmixed'`` or ``'mixed'``.
        seed: returns the schedule seed (called when iteration starts).
        mixed_batch_size: ``'mixed'``: samples per rank and iteration;
            ``None``: ``default_mixed_batch_size`` of the entries' ``s_k``
            and batch sizes (:math:`\\sum_k s_k b_k`, rounded).
    """

    def __init__(self,
                 entries: List[TaskEntry],
                 sampling: str,
                 seed: Callable[[], int],
                 mixed_batch_size: Optional[int] = None) -> None:
        self.entries = entries
        self.sampling = sampling
        self._seed = seed
        self.dataset = _MultiTaskDatasetView(entries)
        self.start_iteration = 0
        self.mixed_shares: Optional[List[float]] = None
        self.mixed_batch_size: Optional[int] = None
        if sampling == 'mixed':
            ratios = [e.sampling_ratio for e in entries]
            sizes = []
            for e in entries:
                sampler = e.dataloader.batch_sampler
                if not isinstance(sampler, MixedBatchSampler):
                    raise TypeError(
                        f"MultiTaskLoop: sampling='mixed' needs entry "
                        f"'{e.name}' to draw through a MixedBatchSampler "
                        f'(got {type(sampler).__name__}); give its '
                        'dataloader as a config dict, the loop adds it')
                sizes.append(sampler.batch_size)
            self.mixed_shares = mixed_shares(ratios, sizes)
            self.mixed_batch_size = (
                default_mixed_batch_size(ratios, sizes)
                if mixed_batch_size is None else int(mixed_batch_size))

    def __len__(self) -> int:
        return sum(len(e.dataloader) for e in self.entries)

    def mixed_schedule(self, seed: int) -> MixedSchedule:
        """The mixed schedule of ``seed`` (``sampling='mixed'`` only)."""
        if self.sampling != 'mixed':
            raise RuntimeError("mixed_schedule: sampling is not 'mixed'")
        return MixedSchedule(self.mixed_shares, self.mixed_batch_size, seed)

    @staticmethod
    def _start(loader: DataLoader,
               num_batches: int) -> _InfiniteDataloaderIterator:
        """An infinite iterator over ``loader`` that starts after its first
        ``num_batches`` batches.

        With mmengine's ``InfiniteSampler`` and plain batching the skipped
        indices are drawn from the sampler's persistent index stream without
        loading any sample; otherwise (a finite sampler, a custom batch
        sampler) the batches are drawn and discarded, as mmengine does.
        (A :class:`MixedBatchSampler` skips its indices itself.)
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
        if self.sampling == 'mixed':
            return self._iter_mixed()
        return self._iter_unmixed()

    def _iter_unmixed(self) -> Iterator[Optional[MultiTaskBatch]]:
        seed = self._seed()
        start = self.start_iteration
        ratios = [e.sampling_ratio for e in self.entries]
        done = [0] * len(self.entries)  # batches given before ``start``
        for iteration in range(start):
            done[scheduled_entry(seed, iteration, ratios)] += 1
            yield None  # discarded by IterBasedTrainLoop's resume
        iterators: Dict[int, _InfiniteDataloaderIterator] = {}
        iteration = start
        while True:
            k = scheduled_entry(seed, iteration, ratios)
            if k not in iterators:
                iterators[k] = self._start(self.entries[k].dataloader,
                                           done[k])
            yield MultiTaskBatch(iteration, [self.entries[k]],
                                 [next(iterators[k])])
            iteration += 1

    def _iter_mixed(self) -> Iterator[Optional[MultiTaskBatch]]:
        schedule = self.mixed_schedule(self._seed())
        start = self.start_iteration
        done = schedule.counts_before(start)  # samples given before start
        for _ in range(start):
            yield None  # discarded by IterBasedTrainLoop's resume
        for k, entry in enumerate(self.entries):
            entry.dataloader.batch_sampler.start(
                schedule.sizes(k, start), skip=done[k])
        expected = schedule.expected
        iterators: Dict[int, _InfiniteDataloaderIterator] = {}
        iteration = start
        while True:
            counts = schedule.counts(iteration)
            chosen = [k for k, n in enumerate(counts) if n]
            batches = []
            for k in chosen:
                if k not in iterators:
                    iterators[k] = self._start(self.entries[k].dataloader, 0)
                batches.append(next(iterators[k]))
            yield MultiTaskBatch(iteration,
                                 [self.entries[k] for k in chosen], batches,
                                 [counts[k] for k in chosen],
                                 [expected[k] for k in chosen])
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
        - ``'mixed'`` (Table 4's baseline): every iteration is one batch
          of ``mixed_batch_size`` samples per rank (default
          :math:`\\sum_k s_k b_k`, the expected per-rank batch of an unmixed
          iteration), shared among the entries: entry :math:`k` holds
          :math:`s_k` of the batch *capacity*, i.e. about
          :math:`\\lambda_k = s_k b_k` samples (exactly
          ``mixed_batch_size * s_k b_k / sum_j s_j b_j``, realised
          deterministically, see
          :class:`~mmupv2.engine.runner.task_schedule.MixedSchedule`), on
          every rank. Over a run each entry gets the samples it would get
          unmixed, at the same expected sample compute per iteration.
          With a ``MultiTaskOptimizer`` each entry present is one *part* of
          the update: its own backward, then
          ``set_task(sampling_ratio=lambda_k / n_k, scale=w_k,
          final=<last part>)`` and ``step()`` (MT-AdamW normalises each
          task's gradient by its own norm; the update's expected moment
          increments equal unmixed MT-AdamW's). Otherwise the loss is
          Eq. 7's estimate :math:`\\sum_k (n_k / \\lambda_k) s_k \\omega_k
          L_k`, one update (entries back-propagated one at a time, DDP
          synchronising on the last; under DeepSpeed summed, one
          backward). See ``docs/multi_task_training.md``.

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
        mixed_batch_size: ``'mixed'`` only: samples per rank and iteration
            (the global batch is this times the number of ranks); ``None``:
            :math:`\\sum_k s_k b_k` rounded.
        non_finite_loss: what an iteration whose loss (any entry's, on any
            rank) is NaN or infinite does, before its backward: ``'skip'``
            (default) leaves the weights and the optimizer as they are,
            counts the step (``non_finite_skips`` in the message hub's
            runtime info, kept in checkpoints) and logs a warning naming
            the iteration, the entry, its task and the non-finite loss
            terms; ``'raise'`` stops with that message
            (:class:`NonFiniteLossError`). Under mixed sampling with a
            multi-task optimizer the parts of the update already added stay
            and the non-finite entry's part is dropped.
        max_consecutive_skips: ``'skip'`` stops with
            :class:`NonFiniteLossError` after this many skipped iterations
            in a row (a diverged model would skip forever).
        val_begin, val_interval, dynamic_intervals: as in
            ``IterBasedTrainLoop``.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[Dict, MultiTaskDataloaders],
                 max_iters: int,
                 sampling: str = 'unmixed',
                 seed: Union[int, None] = None,
                 mixed_batch_size: Optional[int] = None,
                 non_finite_loss: str = 'skip',
                 max_consecutive_skips: int = 20,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals=None) -> None:
        if sampling not in SAMPLING_MODES:
            raise ValueError(f'MultiTaskLoop: sampling must be one of '
                             f'{SAMPLING_MODES}, got {sampling!r}')
        if mixed_batch_size is not None and (
                sampling != 'mixed' or not isinstance(mixed_batch_size, int)
                or mixed_batch_size < 1):
            raise ValueError(
                f'MultiTaskLoop: train_cfg.mixed_batch_size='
                f"{mixed_batch_size!r} needs sampling='mixed' and a positive "
                f'int (samples per rank and iteration); sampling is '
                f'{sampling!r}')
        # a plain mmengine Runner would read load_from with its own loader
        check_checkpoint_loading(runner)
        if non_finite_loss not in NON_FINITE_MODES:
            raise ValueError(
                f'MultiTaskLoop: non_finite_loss must be one of '
                f'{NON_FINITE_MODES}, got {non_finite_loss!r}')
        if not isinstance(max_consecutive_skips, int) or \
                max_consecutive_skips < 1:
            raise ValueError(
                'MultiTaskLoop: max_consecutive_skips must be a positive '
                f'int, got {max_consecutive_skips!r}')
        self.non_finite_loss = non_finite_loss
        self.max_consecutive_skips = max_consecutive_skips
        self._consecutive_skips = 0
        self.sampling = sampling
        self._schedule_seed = seed
        self._runner = runner  # build_entries needs it
        if not isinstance(dataloader, MultiTaskDataloaders):
            dataloader = MultiTaskDataloaders(
                self.build_entries(dataloader), sampling, self._get_seed,
                mixed_batch_size)
        super().__init__(runner, dataloader, max_iters, val_begin,
                         val_interval, dynamic_intervals)
        if not any(
                isinstance(h, RandomStateHook) for h in runner.hooks):
            runner.register_hook(RandomStateHook())
        # checkpoints of plain data: weights-only loads resume them
        if not any(
                isinstance(h, DataOnlyCheckpointHook) for h in runner.hooks):
            runner.register_hook(DataOnlyCheckpointHook())
        # no checkpoint with NaN / inf weights is ever written
        if not any(
                isinstance(h, FiniteCheckpointHook) for h in runner.hooks):
            runner.register_hook(FiniteCheckpointHook())

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
        for name, entry in cfg.items():
            if not isinstance(entry, dict) or 'dataloader' not in entry:
                raise KeyError(f"MultiTaskLoop: train_dataloader['{name}'] "
                               "needs a 'dataloader' dict")
            unknown = set(entry) - {'dataloader', 'sampling_ratio',
                                    'loss_weight'}
            if unknown:
                raise KeyError(f"MultiTaskLoop: train_dataloader['{name}'] "
                               f'has unknown keys {sorted(unknown)}')
        ratios = entry_sampling_ratios(cfg)
        names, loaders, weights = [], [], []
        for name, entry in cfg.items():
            loader = entry['dataloader']
            if isinstance(loader, dict) and self.sampling == 'mixed':
                loader = self._with_mixed_batch_sampler(name, loader)
            if isinstance(loader, dict):
                loader = self.runner.build_dataloader(
                    loader, seed=self.runner.seed,
                    diff_rank_seed=diff_rank_seed)
            names.append(name)
            loaders.append(loader)
            weights.append(float(entry.get('loss_weight', 1.0)))
        entries = []
        for name, loader, weight in zip(names, loaders, weights):
            ratio = ratios[name]
            task = getattr(loader.dataset, 'task', None)
            if task is None:
                raise AttributeError(
                    f"MultiTaskLoop: the data set of entry '{name}' "
                    f'({type(loader.dataset).__name__}) has no `task`; use an '
                    'mmupv2 data set')
            entries.append(TaskEntry(name, task, ratio, weight, loader))
        return entries

    @staticmethod
    def _with_mixed_batch_sampler(name: str, loader: Dict) -> Dict:
        """The entry's loader config, batched by a
        :class:`MixedBatchSampler`."""
        if loader.get('batch_sampler') is not None:
            raise ValueError(
                f"MultiTaskLoop: train_dataloader['{name}'].dataloader."
                f"batch_sampler={loader['batch_sampler']!r}: sampling='mixed' "
                'draws variable-size batches with its own MixedBatchSampler; '
                'remove the batch_sampler')
        if not isinstance(loader.get('batch_size'), int):
            raise ValueError(
                f"MultiTaskLoop: train_dataloader['{name}'].dataloader needs "
                "an int batch_size (b_k, its share of a mixed batch is "
                's_k * b_k)')
        return dict(loader, batch_sampler=dict(type=MixedBatchSampler))

    def run(self):
        """Train (after :meth:`setup_optimizer`); on resume, let the loaders
        skip what was trained."""
        self.setup_optimizer()
        self.dataloader.start_iteration = self._iter
        return super().run()

    def setup_optimizer(self) -> None:
        """Fit the multi-task optimizer to the wrapped model, once the
        runner or strategy has wrapped it.

        - ``sharded_grads`` from the model wrapper
          (:func:`~mmupv2.engine.runner.configure_grad_sharding`: FSDP
          ``FULL_SHARD`` / ``SHARD_GRAD_OP`` set it, hybrid sharding and
          ``sharded_grads=True`` under DDP are refused);
        - mixed sampling with a multi-task optimizer is refused with
          gradient accumulation (each part of a mixed update steps).
        """
        optim_wrapper = self.runner.optim_wrapper
        task_optimizer = find_multi_task_optimizer(
            getattr(optim_wrapper, 'optimizer', None))
        configure_grad_sharding(self.runner.model, task_optimizer)
        # OptimWrapper keeps `accumulative_counts` in a private attribute
        counts = getattr(optim_wrapper, '_accumulative_counts', 1)
        if self.sampling == 'mixed' and task_optimizer is not None and \
                counts != 1:
            raise ValueError(
                f'MultiTaskLoop: optim_wrapper.accumulative_counts={counts} '
                "with sampling='mixed' and a multi-task optimizer: every "
                "entry of a mixed iteration steps the optimizer (a part of "
                'the update); use accumulative_counts=1')

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
        optim_wrapper = self.runner.optim_wrapper
        task_optimizer = find_multi_task_optimizer(optim_wrapper.optimizer)
        if self.sampling == 'unmixed':
            return self._train_unmixed(data_batch, task_optimizer)
        if task_optimizer is not None:
            return self._train_mixed_parts(data_batch, task_optimizer)
        return self._train_mixed_eq7(data_batch)

    def _entry_loss(self, batch: dict) -> Tuple[torch.Tensor, Dict]:
        """The parsed loss and log variables of one entry's batch."""
        model = self.runner.model
        module = model.module if is_model_wrapper(model) else model
        with self.runner.optim_wrapper.optim_context(model):
            data = module.data_preprocessor(batch, True)
            if isinstance(model, MMDeepSpeedEngineWrapper):
                # as MMDeepSpeedEngineWrapper.train_step: the engine runs
                # the forward, on inputs cast to its precision
                losses = model.model(
                    **model._cast_inputs_half(data), mode='loss')
            else:
                losses = model(**data, mode='loss')
        return module.parse_losses(losses)

    def _update(self) -> None:
        optim_wrapper = self.runner.optim_wrapper
        if optim_wrapper.should_update():
            optim_wrapper.step()
            optim_wrapper.zero_grad()

    def _train_unmixed(
            self, data_batch: MultiTaskBatch,
            task_optimizer: Optional[MultiTaskOptimizer]) -> Dict[str, float]:
        """One entry: MT-AdamW gets ``set_task(s_k, w_k)``; a plain
        optimizer the loss times ``w_k``."""
        optim_wrapper = self.runner.optim_wrapper
        entry, batch = data_batch.entries[0], data_batch.batches[0]
        loss, log_vars = self._entry_loss(batch)
        log_vars[f'loss_{entry.name}'] = log_vars['loss']
        if not self._check_finite(data_batch.iteration, entry, log_vars):
            optim_wrapper.zero_grad()
            return log_vars
        if task_optimizer is None:
            loss = loss * entry.loss_weight
        optim_wrapper.backward(optim_wrapper.scale_loss(loss))
        if task_optimizer is not None:
            task_optimizer.set_task(
                sampling_ratio=entry.sampling_ratio, scale=entry.loss_weight)
        self._update()
        self._consecutive_skips = 0
        return log_vars

    def _train_mixed_parts(
            self, data_batch: MultiTaskBatch,
            task_optimizer: MultiTaskOptimizer) -> Dict[str, float]:
        """A mixed batch with a multi-task optimizer: one part of the update
        per entry, each with its own backward and ``step()``."""
        optim_wrapper = self.runner.optim_wrapper
        log_vars: Dict[str, float] = {}
        last = len(data_batch.entries) - 1
        added = all_finite = False  # a part added; no entry dropped
        for i, (entry, batch, n, expected) in enumerate(
                zip(data_batch.entries, data_batch.batches,
                    data_batch.num_samples, data_batch.expected_samples)):
            loss, entry_log = self._entry_loss(batch)
            log_vars.update(entry_log)
            log_vars[f'loss_{entry.name}'] = entry_log['loss']
            finite = self._check_finite(data_batch.iteration, entry,
                                        entry_log)
            all_finite = finite and (all_finite or i == 0)
            if not finite and not (i == last and added):
                continue  # its part is dropped
            if finite:
                optim_wrapper.backward(optim_wrapper.scale_loss(loss))
                if i != last:
                    _uncount_backward(optim_wrapper)
            # the last part completes the update (without a gradient if
            # that entry is dropped)
            task_optimizer.set_task(
                sampling_ratio=expected / n, scale=entry.loss_weight,
                final=i == last)
            optim_wrapper.step()
            optim_wrapper.zero_grad()
            added = True
        if all_finite:
            self._consecutive_skips = 0
        return log_vars

    def _train_mixed_eq7(self,
                         data_batch: MultiTaskBatch) -> Dict[str, float]:
        """A mixed batch with a plain optimizer: one update on
        ``sum_k (n_k / lambda_k) s_k w_k L_k``."""
        model = self.runner.model
        optim_wrapper = self.runner.optim_wrapper
        # DeepSpeed reduces gradients in every backward (no no_sync under
        # ZeRO-2): one backward of the sum
        at_once = isinstance(optim_wrapper, MultiTaskDeepSpeedOptimWrapper)
        log_vars: Dict[str, float] = {}
        total = None
        last = len(data_batch.entries) - 1
        for i, (entry, batch, n, expected) in enumerate(
                zip(data_batch.entries, data_batch.batches,
                    data_batch.num_samples, data_batch.expected_samples)):
            weight = n / expected * entry.sampling_ratio * entry.loss_weight
            # DDP: synchronise gradients only on the last backward
            sync = contextlib.nullcontext() if at_once or i == last or \
                not hasattr(model, 'no_sync') else model.no_sync()
            with sync:
                loss, entry_log = self._entry_loss(batch)
                log_vars.update(entry_log)
                log_vars[f'loss_{entry.name}'] = entry_log['loss']
                if not self._check_finite(data_batch.iteration, entry,
                                          entry_log):
                    # the whole update is skipped
                    optim_wrapper.zero_grad()
                    return log_vars
                if at_once:
                    total = loss * weight if total is None else \
                        total + loss * weight
                else:
                    optim_wrapper.backward(
                        optim_wrapper.scale_loss(loss * weight))
                    if i != last:
                        _uncount_backward(optim_wrapper)
        if at_once:
            optim_wrapper.backward(optim_wrapper.scale_loss(total))
        self._update()
        self._consecutive_skips = 0
        return log_vars

    def _check_finite(self, iteration: int, entry: TaskEntry,
                      log_vars: Dict[str, torch.Tensor]) -> bool:
        """Whether the entry's loss is finite on every rank; if not, count
        the skip and warn, or raise (``non_finite_loss``).

        Raises:
            NonFiniteLossError: ``non_finite_loss='raise'``, or the
                ``max_consecutive_skips``-th skip in a row.
        """
        bad = [k for k, v in log_vars.items()
               if isinstance(v, torch.Tensor) and not bool(
                   torch.isfinite(v.detach()).all())]
        flag = log_vars['loss'].detach().new_tensor(0. if bad else 1.)
        all_reduce(flag, op='min')  # every rank skips, or none
        if bool(flag > 0):
            return True
        terms = ', '.join(f'{k}={float(log_vars[k]):.4g}' for k in bad) or \
            'finite here, non-finite on another rank'
        message = (f'iteration {iteration + 1}: non-finite loss of entry '
                   f"'{entry.name}' (task {entry.task}): {terms}")
        if self.non_finite_loss == 'raise':
            raise NonFiniteLossError(
                f'{message}; stopping (train_cfg.non_finite_loss=\'raise\''
                "; 'skip' skips such iterations)")
        hub = self.runner.message_hub
        hub.update_info('non_finite_skips',
                        hub.get_info('non_finite_skips', 0) + 1)
        self._consecutive_skips += 1
        if self._consecutive_skips >= self.max_consecutive_skips:
            raise NonFiniteLossError(
                f'{message}; {self._consecutive_skips} iterations in a row '
                'had a non-finite loss, the model has likely diverged: '
                'stopping (lower the learning rate, or resume from an '
                'earlier checkpoint; train_cfg.max_consecutive_skips)')
        print_log(f'{message}; the update is skipped ('
                  f'{hub.get_info("non_finite_skips")} skipped so far)',
                  logger='current', level=logging.WARNING)
        return False


def _uncount_backward(optim_wrapper: OptimWrapper) -> None:
    """Make the backward pass just run not count as an accumulation step.

    Mixed sampling back-propagates one entry at a time and updates once per
    iteration, but ``OptimWrapper.backward`` counts every call (the count
    drives ``should_update``, ``should_sync`` and ``scale_loss`` under
    gradient accumulation). mmengine offers no public way to run several
    backward passes as one step, so this undoes the count of the private
    ``_inner_count`` that every ``OptimWrapper`` (``AmpOptimWrapper``
    included) increments; DeepSpeed's wrapper keeps no count.
    """
    if hasattr(optim_wrapper, '_inner_count'):
        optim_wrapper._inner_count -= 1
