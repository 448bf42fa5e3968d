# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Plot loss / metric curves of mmengine's json logs, per task (mmdet's
``tools/analysis_tools/analyze_logs.py``)::

    python tools/analysis_tools/analyze_logs.py plot_curve LOG.json ...
        [--keys loss detection.loss_cls] [--entry NAME] [--out FILE.png]
        [--title T] [--legend L ...] [--backend B]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG.json ...

``LOG.json`` is ``<work_dir>/<timestamp>/vis_data/scalars.json`` (or the
``<timestamp>.json`` beside it): one JSON object per logged step. A
training line of the multi-task loop holds the total ``loss``, the model's
task-prefixed terms (``classification.loss_cls``,
``detection.proposal.d0.loss_bbox`` ...), one ``loss_<entry>`` per entry of
``train_dataloader``, ``lr``, ``time`` ..., ``step`` (the iteration) and
``task`` (the entry of the last iteration); a validation line holds the
metrics (``detection/detection/bbox_mAP`` ...), ``step`` and its own
``time`` (read as ``val/time``).

A key of ``--keys`` names the log key itself or its last part: ``loss_cls``
plots every ``<task>.loss_cls`` (one curve each), ``bbox_mAP`` every
``.../bbox_mAP``. ``--entry NAME`` keeps the keys of that entry or task:
``loss_NAME`` and ``NAME.*`` / ``NAME/*`` (in the shapes configs entries
are named after their tasks; in the paper configs ``--entry coco_caption``
gives the entry's loss and ``--entry captioning`` the task's terms).
Without ``--keys``, ``--entry`` plots all of its loss keys, else ``loss``
is plotted. Losses are drawn against the iteration, metrics with markers
at their validation steps. Under unmixed sampling a task's loss is the
running mean over its own last iterations (``MultiTaskLogProcessor``), so
it changes only when that task was trained since the last line.

With ``--out FILE.png`` the figure is written there (matplotlib's Agg
backend, no display needed); otherwise it is shown.
"""
import argparse
import json
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Keys of a log line that are not curves.
NOT_CURVES = ('step', 'iter', 'epoch', 'task')

LogDict = Dict[str, Tuple[List[int], List[float]]]


def load_json_log(path: str) -> LogDict:
    """``{key: (steps, values)}`` of a json log (lines without ``step``,
    e.g. the test metrics, and non-numeric values are skipped). The
    ``time`` / ``data_time`` of a validation line are ``val/time`` /
    ``val/data_time``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not JSON (the message names the line).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'no json log at {path}')
    curves: Dict[str, Tuple[List[int], List[float]]] = defaultdict(
        lambda: ([], []))
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                log = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{number}: not a JSON line ({e})'
                                 ) from e
            if 'step' not in log:
                continue
            # a validation line: its own time / data_time apart
            validation = any(is_metric(k) for k in log)
            for key, value in log.items():
                if key in NOT_CURVES or isinstance(value, bool) or \
                        not isinstance(value, (int, float)):
                    continue
                if validation and not is_metric(key):
                    key = f'val/{key}'
                steps, values = curves[key]
                steps.append(int(log['step']))
                values.append(float(value))
    return dict(curves)


def entry_keys(keys: Sequence[str], entry: str) -> List[str]:
    """The keys of an entry or task: ``loss_<entry>``, ``<entry>.*`` and
    ``<entry>/*``."""
    return [
        k for k in keys if k == f'loss_{entry}' or k.startswith(
            (f'{entry}.', f'{entry}/'))
    ]


def is_metric(key: str) -> bool:
    """A validation metric (``<data set>/<prefix>/<name>``), not a
    training scalar."""
    return '/' in key


def select_keys(available: Sequence[str],
                wanted: Optional[Sequence[str]] = None,
                entry: Optional[str] = None) -> List[str]:
    """The log keys to plot, in order.

    Args:
        available: the keys of the log.
        wanted: ``--keys``: each matches a key exactly or by its last part
            (after the last ``.`` or ``/``), so ``loss_cls`` gives every
            task's; None: all loss keys of ``entry``, or ``['loss']``.
        entry: ``--entry``: keep the keys of this entry or task.

    Raises:
        KeyError: a wanted key (or the entry) matches nothing; the message
            lists what the log has.
    """
    pool = list(available)
    if entry is not None:
        pool = entry_keys(pool, entry)
        if not pool:
            raise KeyError(f'--entry {entry}: no key loss_{entry}, '
                           f'{entry}.* or {entry}/* in the log; its keys: '
                           f'{_summary(available)}')
        if wanted is None:
            losses = [k for k in pool if not is_metric(k) and 'loss' in k]
            return losses or pool
    if wanted is None:
        wanted = ['loss']
    selected: List[str] = []
    for key in wanted:
        matches = [key] if key in pool else [
            k for k in pool if k.endswith(('.' + key, '/' + key))
        ]
        if not matches:
            where = f' of --entry {entry}' if entry else ''
            raise KeyError(f'--keys {key}: no such key{where} in the log; '
                           f'its keys: {_summary(pool)}')
        selected += [k for k in matches if k not in selected]
    return selected


def _summary(keys: Sequence[str], limit: int = 30) -> str:
    shown = ', '.join(sorted(keys)[:limit])
    return shown + (f', ... ({len(keys) - limit} more)'
                    if len(keys) > limit else '')


def plot_curve(log_dicts: Sequence[LogDict], json_logs: Sequence[str],
               keys: Optional[Sequence[str]] = None,
               entry: Optional[str] = None,
               legend: Optional[Sequence[str]] = None,
               title: Optional[str] = None):
    """Draw one curve per (log, selected key).

    Returns:
        matplotlib.figure.Figure: the figure (one ``Line2D`` per curve in
        ``figure.axes[0].lines``).
    """
    import matplotlib.pyplot as plt
    selected = [select_keys(list(d), keys, entry) for d in log_dicts]
    num_curves = sum(len(s) for s in selected)
    if legend is not None and len(legend) != num_curves:
        raise ValueError(f'--legend: {len(legend)} labels for {num_curves} '
                         'curves')
    fig, ax = plt.subplots(figsize=(10, 6))
    index = 0
    for log_dict, json_log, log_keys in zip(log_dicts, json_logs, selected):
        prefix = f'{osp.basename(json_log)}: ' if len(json_logs) > 1 else ''
        for key in log_keys:
            steps, values = log_dict[key]
            label = legend[index] if legend else prefix + key
            print(f'plot curve of {json_log}, metric is {key}')
            if is_metric(key):
                ax.plot(steps, values, label=label, marker='o')
            else:
                ax.plot(steps, values, label=label, linewidth=0.8)
            index += 1
    ax.set_xlabel('iter')
    ax.legend(fontsize='small')
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def cal_train_time(log_dicts: Sequence[LogDict], json_logs: Sequence[str],
                   include_outliers: bool = False) -> List[float]:
    """Print (and return) the mean ``time`` per iteration of each log.

    The first logged value (start-up) is left out unless
    ``include_outliers``.
    """
    means = []
    for log_dict, json_log in zip(log_dicts, json_logs):
        times = log_dict.get('time', ([], []))[1]
        if not include_outliers:
            times = times[1:]
        if not times:
            raise KeyError(f'{json_log}: no training time logged (lower '
                           "default_hooks.logger's interval)")
        print(f'{"-" * 5}Analyze train time of {json_log}{"-" * 5}')
        print(f'slowest logged iter {max(times):.4f} s, fastest '
              f'{min(times):.4f} s, std {np.std(times):.4f} s')
        print(f'average iter time: {np.mean(times):.4f} s/iter\n')
        means.append(float(np.mean(times)))
    return means


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Analyze Json Log')
    subparsers = parser.add_subparsers(dest='task', help='task parser')
    subparsers.required = True
    plot = subparsers.add_parser(
        'plot_curve', help='parser for plotting curves')
    plot.add_argument(
        'json_logs', type=str, nargs='+',
        help='path of train log in json format')
    plot.add_argument(
        '--keys', type=str, nargs='+', default=None,
        help='the log keys (or their last part, e.g. loss_cls) to plot; '
        'default: loss, or every loss of --entry')
    plot.add_argument(
        '--entry', type=str, default=None,
        help='plot the keys of this train_dataloader entry or task only')
    plot.add_argument('--title', type=str, help='title of figure')
    plot.add_argument(
        '--legend', type=str, nargs='+', default=None,
        help='legend of each plot')
    plot.add_argument(
        '--backend', type=str, default=None,
        help='backend of plt (default: Agg with --out)')
    plot.add_argument('--out', type=str, default=None,
                      help='write the figure to this file (e.g. .png)')
    train_time = subparsers.add_parser(
        'cal_train_time',
        help='parser for computing the average time per training iteration')
    train_time.add_argument(
        'json_logs', type=str, nargs='+',
        help='path of train log in json format')
    train_time.add_argument(
        '--include-outliers', action='store_true',
        help='include the first logged time of each log')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for json_log in args.json_logs:
        if not json_log.endswith('.json'):
            raise ValueError(f'{json_log}: expected a .json log (mmengine '
                             'writes vis_data/scalars.json)')
    log_dicts = [load_json_log(p) for p in args.json_logs]
    if args.task == 'cal_train_time':
        cal_train_time(log_dicts, args.json_logs, args.include_outliers)
        return 0
    import matplotlib
    backend = args.backend or ('Agg' if args.out else None)
    if backend:
        matplotlib.use(backend)
    import matplotlib.pyplot as plt
    fig = plot_curve(log_dicts, args.json_logs, args.keys, args.entry,
                     args.legend, args.title)
    if args.out is None:
        plt.show()
    else:
        print(f'save curve to: {args.out}')
        fig.savefig(args.out)
    plt.close(fig)
    return 0


if __name__ == '__main__':
    sys.exit(main())
