# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""One summary of a multi-task evaluation: rows of (task, data set, metric,
value), printed as a table and written as JSON by ``tools/test.py``."""
import json
import numbers
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from terminaltables import AsciiTable

COLUMNS = ('task', 'data set', 'metric', 'value')
UNKNOWN = '-'


@dataclass(frozen=True)
class MetricRow:
    """One metric of one data set.

    Attributes:
        task: the data set's task (``'-'`` if unknown).
        dataset: the data set's name (the key in ``test_dataloader``).
        metric: the metric key without the data set prefix.
        value: a number, or any JSON-able value (e.g. a per-class list).
    """
    task: str
    dataset: str
    metric: str
    value: Any


def _plain(value: Any) -> Any:
    """Turn tensors / numpy values into Python numbers or lists."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def loop_dataset_tasks(loop: Any) -> Dict[str, str]:
    """``{data set name: task}`` of a val / test loop.

    Works for :class:`~mmupv2.engine.runner.MultiTaskTestLoop` (its
    ``tasks``) and for mmengine's single-data-set loops (the data set's
    ``dataset_name`` and ``task``, or its class name and ``'-'``).
    """
    tasks = getattr(loop, 'tasks', None)
    if isinstance(tasks, Mapping):
        return {name: task or UNKNOWN for name, task in tasks.items()}
    dataset = loop.dataloader.dataset
    name = getattr(dataset, 'dataset_name', None) or type(dataset).__name__
    return {name: getattr(dataset, 'task', None) or UNKNOWN}


def metrics_to_rows(metrics: Mapping[str, Any],
                    tasks: Mapping[str, str]) -> List[MetricRow]:
    """Split ``'<data set>/<metric key>'`` keys into table rows.

    Args:
        metrics: what ``runner.test()`` / ``runner.val()`` returned.
        tasks: ``{data set name: task}`` (see :func:`loop_dataset_tasks`).
            A key whose first part is not a data set name is given to the
            only data set when there is one (mmengine's plain ``TestLoop``
            does not prefix), else to data set ``'-'``.

    Returns:
        list[MetricRow]: in the order of ``metrics``.
    """
    rows = []
    only = next(iter(tasks)) if len(tasks) == 1 else None
    for key, value in metrics.items():
        head, sep, rest = key.partition('/')
        if sep and head in tasks:
            dataset, metric = head, rest
        elif only is not None:
            dataset, metric = only, key
        else:
            dataset, metric = UNKNOWN, key
        rows.append(
            MetricRow(
                task=tasks.get(dataset, UNKNOWN),
                dataset=dataset,
                metric=metric,
                value=_plain(value)))
    return rows


def format_value(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals (integers as they are); anything
    else as ``str``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    return f'{float(value):.{digits}f}'


def rows_to_table(rows: Sequence[MetricRow],
                  title: Optional[str] = 'Evaluation',
                  digits: int = 4) -> str:
    """Render rows as one ``terminaltables.AsciiTable`` with the columns
    :data:`COLUMNS`."""
    data = [list(COLUMNS)]
    data += [[r.task, r.dataset, r.metric,
              format_value(r.value, digits)] for r in rows]
    table = AsciiTable(data, title=title)
    table.justify_columns[3] = 'right'
    return table.table


def rows_to_json(rows: Sequence[MetricRow], **extra: Any) -> Dict[str, Any]:
    """The JSON document of :func:`dump_rows`: ``extra`` (e.g. config and
    checkpoint paths) plus ``results``, a list of
    ``{task, dataset, metric, value}`` dicts."""
    return dict(extra, results=[asdict(r) for r in rows])


def dump_rows(rows: Sequence[MetricRow], path: str, **extra: Any) -> None:
    """Write :func:`rows_to_json` to ``path`` (folders are created)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(rows_to_json(rows, **extra), f, indent=2)
        f.write('\n')
