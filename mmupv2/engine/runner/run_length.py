# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Fit a config's iteration-based parameter schedules to its run length.

A run shortened with ``--cfg-options train_cfg.max_iters=N`` (or the demo's
``--max-iters N``) would otherwise train a truncated schedule: a warm-up
that never ends, a cosine that stops high. :func:`fit_schedulers_to_run`
clamps every iteration-based scheduler to ``train_cfg.max_iters`` and logs
each change::

    max_iters = 20
    LinearLR           begin 0,  end 50    ->  begin 0,  end 20
    CosineAnnealingLR  begin 50, end 1000  ->  begin 19, end 20
    (T_max, when given, to end - begin)

Used by ``tools/train.py`` and ``tools/misc/demo.py``.
"""
import logging
from typing import Iterator, List, Mapping, MutableMapping

from mmengine.config import Config
from mmengine.logging import print_log


def _schedulers(param_scheduler) -> Iterator[MutableMapping]:
    """Every scheduler config of ``param_scheduler``: one dict, a list, or
    a dict of those per optimizer (multiple optimizers)."""
    if param_scheduler is None:
        return
    if isinstance(param_scheduler, Mapping) and 'type' not in \
            param_scheduler:
        for value in param_scheduler.values():
            yield from _schedulers(value)
    elif isinstance(param_scheduler, Mapping):
        yield param_scheduler
    else:
        for scheduler in param_scheduler:
            yield from _schedulers(scheduler)


def fit_schedulers_to_run(cfg: Config) -> List[str]:
    """Clamp the iteration-based schedulers of ``cfg.param_scheduler`` (in
    place) to ``cfg.train_cfg.max_iters``.

    For each scheduler with ``by_epoch=False``: an ``end`` beyond
    ``max_iters`` becomes ``max_iters``; a ``begin`` at or beyond it becomes
    ``max_iters - 1`` (the scheduler then acts in the last iteration, as
    mmengine needs ``begin < end``); a ``T_max`` beyond the clamped span
    becomes ``end - begin``. Epoch-based schedulers, and configs without
    ``train_cfg.max_iters``, are left alone.

    Args:
        cfg: the config, after the command line is merged.

    Returns:
        list[str]: one message per changed scheduler (each also logged as a
        warning).
    """
    max_iters = (cfg.get('train_cfg') or {}).get('max_iters')
    if max_iters is None:
        return []
    messages = []
    for i, scheduler in enumerate(_schedulers(cfg.get('param_scheduler'))):
        if scheduler.get('by_epoch', True):
            continue
        before = {k: scheduler[k] for k in ('begin', 'end', 'T_max')
                  if k in scheduler}
        if scheduler.get('end', 0) > max_iters:
            scheduler['end'] = max_iters
        if scheduler.get('begin', 0) >= max_iters:
            scheduler['begin'] = max_iters - 1
        span = scheduler.get('end', max_iters) - scheduler.get('begin', 0)
        if scheduler.get('T_max', 0) > span:
            scheduler['T_max'] = span
        after = {k: scheduler[k] for k in before}
        if after != before:
            message = (
                f'param_scheduler[{i}] ({scheduler.get("type")}): '
                f'{_fields(before)} -> {_fields(after)}, to fit '
                f'train_cfg.max_iters={max_iters}')
            print_log(message, logger='current', level=logging.WARNING)
            messages.append(message)
    return messages


def _fields(values: Mapping) -> str:
    return ', '.join(f'{k} {v}' for k, v in values.items())
