# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Runs of a multi-task config on some of its entries: how many iterations
each entry trains in the whole multi-task run, the config of a run on a
subset of the entries for a given number of iterations, training and
testing it in this process, and its main metrics on the paper's 0-100
scale.

Flow (``tools/analysis_tools/train_entries.py``,
``tools/analysis_tools/single_task_baselines.py``, ``tools/misc/demo.py``)::

    cfg (multi-task) ──entry_iterations──► {entry: iterations in the run}
    cfg ──entries_config(cfg, entries, iters, work_dir)──► cfg of the run
        (those entries; the schedule cut to ``iters``; evaluated on those
        of them that val_evaluator has)
    cfg of the run ──train_and_test──► EntryRun(metrics, seconds)
    metrics ──paper_scale──► {entry: {metric: value on 0-100}}
"""
import copy
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from mmengine.config import Config

from .launch import is_multi_task_loader_cfg
from .run_length import fit_schedulers_to_run
from .task_schedule import (
    default_mixed_batch_size,
    entry_sampling_ratios,
    mixed_shares,
    unmixed_iterations,
)

#: the main metrics of the tasks (the last part of the test loop's
#: ``'<entry>/<prefix>/<metric>'`` keys) and the factor that puts each on
#: the paper's 0-100 scale (COCO's mAP is a fraction)
MAIN_METRICS = {
    'top1': 1.0,
    'bbox_mAP': 100.0,
    'segm_mAP': 100.0,
    'BLEU-4': 1.0,
    'CIDEr': 1.0,
    'i2t_R@1': 1.0,
    't2i_R@1': 1.0,
}


def multi_task_entries(cfg: Config) -> Dict:
    """The config's multi-task ``train_dataloader``
    (``{entry name: dict(dataloader=..., sampling_ratio=...,
    loss_weight=...)}``).

    Raises:
        ValueError: ``train_dataloader`` is not such a dict.
    """
    entries = cfg.get('train_dataloader')
    if not is_multi_task_loader_cfg(entries):
        raise ValueError(
            'the config\'s train_dataloader must be the multi-task dict '
            '{entry name: dict(dataloader=..., sampling_ratio=..., '
            'loss_weight=...)} of MultiTaskLoop')
    return entries


def schedule_seed(cfg: Config) -> int:
    """The seed of the config's task schedule: ``train_cfg.seed``, else
    ``randomness.seed`` (what :class:`MultiTaskLoop` uses).

    Raises:
        ValueError: neither is set (the Runner would draw a random seed, so
            the iterations of each entry would not be known in advance).
    """
    seed = cfg.train_cfg.get('seed')
    if seed is None:
        seed = cfg.get('randomness', {}).get('seed')
    if seed is None:
        raise ValueError(
            'the config sets neither train_cfg.seed nor randomness.seed: '
            'the task schedule (which entry trains at which iteration) '
            'would be drawn at random; set randomness.seed')
    return int(seed)


def entry_iterations(cfg: Config) -> Dict[str, int]:
    """How many iterations each entry trains in the config's multi-task run
    (``train_cfg.max_iters`` iterations).

    - ``sampling='unmixed'``: the iterations the schedule gives the entry,
      counted exactly (:func:`~.task_schedule.unmixed_iterations` with the
      :func:`schedule_seed`), about :math:`s_k \\cdot` ``max_iters``.
    - ``sampling='mixed'``: every iteration holds every entry, with part of
      a batch; the count is the iterations *of the entry's own batch size*
      that its samples fill (:math:`\\lambda_k T / b_k`, i.e. about
      :math:`s_k T` with the default ``mixed_batch_size``).

    Returns:
        dict: ``{entry name: iterations}`` in the entries' order.
    """
    entries = multi_task_entries(cfg)
    ratios = entry_sampling_ratios(entries)
    max_iters = int(cfg.train_cfg.max_iters)
    sampling = cfg.train_cfg.get('sampling', 'unmixed')
    if sampling == 'unmixed':
        counts = unmixed_iterations(
            schedule_seed(cfg), max_iters, list(ratios.values()))
    else:
        sizes = [int(e['dataloader']['batch_size']) for e in entries.values()]
        shares = mixed_shares(list(ratios.values()), sizes)
        batch = cfg.train_cfg.get('mixed_batch_size') or \
            default_mixed_batch_size(list(ratios.values()), sizes)
        counts = [
            round(share * batch * max_iters / size)
            for share, size in zip(shares, sizes)
        ]
    return dict(zip(ratios, counts))


def cut_schedule(cfg: Config, max_iters: int) -> None:
    """Train ``cfg`` for ``max_iters`` iterations (in place), its
    iteration-based schedulers fitted to the shorter run
    (:func:`~mmupv2.engine.runner.run_length.fit_schedulers_to_run`: a
    warm-up longer than the run ends with it; a decay to the old end
    decays to the new one)."""
    if max_iters < 1:
        raise ValueError(f'max_iters must be >= 1, got {max_iters}')
    cfg.train_cfg.max_iters = max_iters
    fit_schedulers_to_run(cfg)


def evaluated_entries(cfg: Config, entries: Sequence[str]) -> List[str]:
    """The entries among ``entries`` that the config evaluates (those with
    a ``val_dataloader`` and a ``val_evaluator`` entry)."""
    loaders = cfg.get('val_dataloader') or {}
    evaluators = cfg.get('val_evaluator') or {}
    return [e for e in entries if e in loaders and e in evaluators]


def entries_config(cfg: Config, entries: Sequence[str], max_iters: int,
                   work_dir: str) -> Config:
    """A copy of the multi-task ``cfg`` that trains the named entries only,
    for ``max_iters`` iterations, and tests the evaluated ones among them.

    ``train_dataloader`` keeps the named entries (their ``s_k`` are
    renormalised by the loop: one entry alone has :math:`s_k = 1`, so
    MT-AdamW's moment updates are those of AdamW, and keeps its
    :math:`\\omega_k`), ``val_dataloader`` / ``val_evaluator`` (and the test
    ones) the evaluated entries; no validation during training, one
    checkpoint at the end, in ``work_dir``.

    Raises:
        KeyError: an entry is not in ``train_dataloader`` (names it and the
            entries there).
    """
    known = multi_task_entries(cfg)
    unknown = [e for e in entries if e not in known]
    if unknown or not entries:
        raise KeyError(f'entries {unknown or list(entries)}: not entries of '
                       f"the config's train_dataloader ({list(known)})")
    cfg = copy.deepcopy(cfg)
    evaluated = evaluated_entries(cfg, entries)
    cfg.train_dataloader = {k: cfg.train_dataloader[k] for k in entries}
    if evaluated:
        cfg.val_dataloader = {k: cfg.val_dataloader[k] for k in evaluated}
        cfg.val_evaluator = {k: cfg.val_evaluator[k] for k in evaluated}
    else:  # mmengine: all three None, or none of them
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        cfg.test_cfg = None
    cfg.test_dataloader, cfg.test_evaluator = (cfg.val_dataloader,
                                               cfg.val_evaluator)
    cut_schedule(cfg, max_iters)
    # no validation, not even the one mmengine's loop runs after the last
    # iteration (the run is tested once, by train_and_test)
    cfg.train_cfg.val_interval = cfg.train_cfg.val_begin = max_iters + 1
    cfg.work_dir = work_dir
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=max_iters, by_epoch=False)
    return cfg


@dataclass
class EntryRun:
    """What :func:`train_and_test` measured.

    Attributes:
        metrics: the test loop's metrics (``'<entry>/<prefix>/<metric>'``
            keys); empty when no trained entry is evaluated.
        train_seconds: wall time of the training.
        test_seconds: wall time of the test.
    """
    metrics: Dict[str, float]
    train_seconds: float
    test_seconds: float


def train_and_test(cfg: Config,
                   experiment_name: Optional[str] = None) -> EntryRun:
    """Build the Runner of ``cfg``, train, then test if it has test
    entries.

    Args:
        cfg: e.g. from :func:`entries_config`.
        experiment_name: the Runner's, to which mmengine appends the time
            stamp (its logger, message hub and visualizer are named after
            it) and the visualizer's name; give each run of one process
            its own, else the runs would log into the first one's folder.
            ``None``: the config's.
    """
    from mmupv2.engine.runner.launch import build_runner
    if experiment_name is not None:
        cfg = copy.deepcopy(cfg)
        cfg.experiment_name = experiment_name
        if cfg.get('visualizer') is not None:
            # mmengine keeps one visualizer per name: the first run's (and
            # its log folder) would take every later run's scalars
            cfg.visualizer.name = experiment_name
    runner = build_runner(cfg)
    start = time.time()
    runner.train()
    train_seconds = time.time() - start
    metrics = {} if cfg.get('test_evaluator') is None else runner.test()
    return EntryRun({k: float(v) for k, v in metrics.items()
                     if isinstance(v, (int, float))}, train_seconds,
                    time.time() - start - train_seconds)


def paper_scale(metrics: Mapping[str, float]) -> Dict[str, Dict[str, float]]:
    """The :data:`MAIN_METRICS` of a test loop's metrics, per entry, on
    the 0-100 scale (rounded to 2 decimals).

    Args:
        metrics: ``{'<entry>/<prefix>/<metric>': value}`` (mmengine's
            values: COCO mAP as a fraction).

    Returns:
        dict: ``{entry: {metric: value}}``, e.g. ``{'detection':
        {'bbox_mAP': 57.4}}``.
    """
    out: Dict[str, Dict[str, float]] = {}
    for key, value in metrics.items():
        entry, _, _ = key.partition('/')
        metric = key.split('/')[-1]
        if metric in MAIN_METRICS and '/' in key:
            out.setdefault(entry, {})[metric] = round(
                float(value) * MAIN_METRICS[metric], 2)
    return out
