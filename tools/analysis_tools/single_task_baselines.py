# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The generalist tax: every task of a multi-task config trained alone, at
the iterations it gets in the multi-task run and at the whole budget, next
to the multi-task result (the comparison of the paper's Table 3, at the
config's size).

    python tools/analysis_tools/single_task_baselines.py CONFIG \
        [--tasks classification retrieval ...] [--budgets share whole] \
        [--multi-task work_dirs/demo | --train-multi-task] \
        [--max-iters N] [--seed N] [--work-dir W] \
        [--write docs/benchmark.md] [--cfg-options key=value ...]

For each task entry (``--tasks``, default every entry of
``train_dataloader`` that ``val_evaluator`` evaluates) the same model and
recipe are trained on that entry alone
(:func:`mmupv2.engine.runner.entry_runs.entries_config`: its
:math:`\\omega_k` kept, :math:`s_k = 1`, the schedule cut to the run):

- ``share``: for the iterations the entry trains in the multi-task run of
  ``train_cfg.max_iters`` iterations, counted from the config's task
  schedule and seed
  (:func:`~mmupv2.engine.runner.entry_runs.entry_iterations`);
- ``whole``: for all ``max_iters`` iterations.

The multi-task result is read from ``--multi-task`` (a finished run of the
same config, seed and ``max_iters``: ``tools/misc/demo.py``'s work dir or
its ``metrics.json``, the JSON of ``tools/test.py --out-metrics``, or the
test JSON mmengine writes into the run's log folder) or, with
``--train-multi-task``, trained here as well. The table (markdown, on the
paper's 0-100 scale) is printed, written to ``W/baselines.md`` and, with
everything measured, ``W/baselines.json``; ``--write`` puts it into a
section of a markdown file (``mmupv2.utils.benchmark_table``).

Each run has its own folder ``W/<run>/`` (log, last checkpoint,
``result.json``). A run whose ``result.json`` was written for the same run
config is read back instead of trained again, so an interrupted
measurement goes on where it stopped (delete a run's folder to redo it).
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

BUDGETS = ('share', 'whole')
MULTI_TASK_RUN = 'multi_task'

#: {entry: {metric: value on 0-100}}
EntryMetrics = Dict[str, Dict[str, float]]


@dataclass
class PlannedRun:
    """One training of the measurement.

    Attributes:
        name: its folder under the work dir.
        entries: the trained entries.
        iterations: how long it trains.
    """
    name: str
    entries: List[str]
    iterations: int


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(
        description='Single-task baselines of a multi-task config at the '
        'same budget (the generalist tax)')
    parser.add_argument('config', help='multi-task config (MultiTaskLoop)')
    parser.add_argument(
        '--tasks', nargs='+', default=None, metavar='ENTRY',
        help='entries of train_dataloader to train alone (default: every '
        'evaluated entry)')
    parser.add_argument(
        '--budgets', nargs='+', choices=BUDGETS, default=list(BUDGETS),
        help='share: the iterations the entry gets in the multi-task run; '
        'whole: all of them')
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        '--multi-task', metavar='PATH',
        help='result of the finished multi-task run: its work dir or a '
        'metrics JSON')
    source.add_argument(
        '--train-multi-task', action='store_true',
        help='train and test the multi-task run here too')
    parser.add_argument(
        '--max-iters', type=int, default=None,
        help='the multi-task budget (default: the config\'s '
        'train_cfg.max_iters)')
    parser.add_argument('--seed', type=int, default=None,
                        help='randomness.seed (default: the config\'s)')
    parser.add_argument(
        '--work-dir', default=None,
        help='default: work_dirs/single_task_baselines/<config name>')
    parser.add_argument('--write', metavar='MARKDOWN',
                        help='write the table as a section of this file')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if args.max_iters is not None and args.max_iters < 1:
        parser.error(f'--max-iters must be >= 1, got {args.max_iters}')
    return args


def choose_tasks(cfg, tasks: Optional[Sequence[str]]) -> List[str]:
    """The entries to train alone: ``tasks`` checked against the config,
    or every evaluated entry.

    Raises:
        KeyError: a named entry is not in ``train_dataloader``, or has no
            ``val_dataloader`` / ``val_evaluator`` entry (nothing to compare).
    """
    from mmupv2.engine.runner.entry_runs import (
        evaluated_entries,
        multi_task_entries,
    )
    entries = list(multi_task_entries(cfg))
    evaluated = evaluated_entries(cfg, entries)
    if tasks is None:
        if not evaluated:
            raise KeyError('no entry of train_dataloader has a val_evaluator '
                           f'entry (entries {entries})')
        return evaluated
    for task in tasks:
        if task not in entries:
            raise KeyError(f'--tasks {task}: not an entry of the config\'s '
                           f'train_dataloader ({entries})')
        if task not in evaluated:
            raise KeyError(
                f'--tasks {task}: the entry has no val_dataloader / '
                f'val_evaluator entry, so it has no metric to compare '
                f'(evaluated entries: {evaluated})')
    return list(dict.fromkeys(tasks))


def plan_runs(tasks: Sequence[str], budgets: Sequence[str],
              iterations: Dict[str, int], max_iters: int,
              train_multi_task: bool) -> List[PlannedRun]:
    """The trainings to run, in order. A task whose share is the whole
    budget is trained once; one that gets no iteration in the multi-task
    run has no ``share`` run."""
    runs = []
    if train_multi_task:
        runs.append(PlannedRun(MULTI_TASK_RUN, list(iterations), max_iters))
    for task in tasks:
        for budget in budgets:
            iters = iterations[task] if budget == 'share' else max_iters
            if iters < 1 or (budget == 'whole' and 'share' in budgets
                             and iterations[task] == max_iters):
                continue
            runs.append(PlannedRun(f'{task}_{budget}', [task], iters))
    return runs


def _fingerprint(cfg) -> str:
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_or_reuse(cfg, run: PlannedRun, work_dir: str) -> Tuple[dict, bool]:
    """Train and test ``run`` (or read back its earlier ``result.json``).

    Returns:
        tuple: its result (``metrics``, ``main`` on 0-100, ``iterations``,
        ``train_seconds``, ``test_seconds``) and whether it was reused.
    """
    from mmupv2.engine.runner.entry_runs import (
        entries_config,
        paper_scale,
        train_and_test,
    )
    run_dir = osp.join(work_dir, run.name)
    run_cfg = entries_config(cfg, run.entries, run.iterations, run_dir)
    key = _fingerprint(run_cfg)
    path = osp.join(run_dir, 'result.json')
    if osp.exists(path):
        with open(path) as f:
            result = json.load(f)
        if result.get('fingerprint') == key:
            return result, True
    measured = train_and_test(run_cfg, experiment_name=run.name)
    result = dict(
        fingerprint=key, entries=run.entries, iterations=run.iterations,
        metrics=measured.metrics, main=paper_scale(measured.metrics),
        train_seconds=round(measured.train_seconds, 1),
        test_seconds=round(measured.test_seconds, 1))
    os.makedirs(run_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    return result, False


def _main_of_json(doc, path: str) -> EntryMetrics:
    """The main metrics (0-100) of one of the metrics documents."""
    from mmupv2.engine.runner.entry_runs import MAIN_METRICS, paper_scale
    if isinstance(doc, dict) and isinstance(doc.get('results'), list):
        # tools/test.py --out-metrics: rows of task, dataset, metric, value
        return paper_scale({f"{r['dataset']}/{r['metric']}": r['value']
                            for r in doc['results']
                            if isinstance(r.get('value'), (int, float))})
    if isinstance(doc, dict) and doc and all(
            isinstance(v, dict) for v in doc.values()):
        # demo.py's metrics.json: {task: {metric: value on 0-100}}
        return {entry: {m: float(v) for m, v in fields.items()
                        if m in MAIN_METRICS}
                for entry, fields in doc.items()}
    if isinstance(doc, dict):  # mmengine's test JSON, raw values
        return paper_scale({k: v for k, v in doc.items()
                            if isinstance(v, (int, float))})
    raise ValueError(f'--multi-task {path}: not a metrics JSON (a dict)')


def read_multi_task(path: str) -> Tuple[EntryMetrics, str]:
    """The multi-task result of ``--multi-task`` and the file it came from.

    ``path``: a JSON file (see :func:`_main_of_json`), or a work dir that
    holds ``metrics.json`` (``tools/misc/demo.py``) or mmengine's test JSON
    (``<time stamp>/<time stamp>.json``, the newest is taken).

    Raises:
        FileNotFoundError: nothing of that kind at ``path``.
        ValueError: the file holds no main metric.
    """
    if osp.isdir(path):
        candidates = [osp.join(path, 'metrics.json')] + sorted(
            (p for p in glob.glob(osp.join(path, '*', '*.json'))
             if osp.basename(p)[:-5] == osp.basename(osp.dirname(p))),
            reverse=True)
        found = [p for p in candidates if osp.isfile(p)]
        if not found:
            raise FileNotFoundError(
                f'--multi-task {path}: no metrics.json (tools/misc/demo.py) '
                'and no test JSON (<time stamp>/<time stamp>.json) in it')
        path = found[0]
    if not osp.isfile(path):
        raise FileNotFoundError(f'--multi-task {path}: no such file or '
                                'folder')
    with open(path) as f:
        try:
            doc = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'--multi-task {path}: not JSON ({e})') from e
    result = {k: v for k, v in _main_of_json(doc, path).items() if v}
    if not result:
        raise ValueError(f'--multi-task {path}: no main metric '
                         '(top1, bbox_mAP, CIDEr, ...) in it')
    return result, path


def _value(metrics: Optional[EntryMetrics], entry: str,
           metric: str) -> Optional[float]:
    return None if metrics is None else metrics.get(entry, {}).get(metric)


def _cell(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1f}'


def _tax(alone: Optional[float], multi: Optional[float]) -> str:
    return '–' if alone is None or multi is None else f'{alone - multi:+.1f}'


def table_rows(tasks: Sequence[str], multi: Optional[EntryMetrics],
               share: EntryMetrics, whole: EntryMetrics,
               iterations: Dict[str, int]) -> List[list]:
    """One row per (task entry, main metric): multi-task, alone at its
    iterations, alone at the whole budget, and the taxes (alone − multi)."""
    rows = []
    for task in tasks:
        metrics = []
        for source in (multi, share, whole):
            for metric in (source or {}).get(task, {}):
                if metric not in metrics:
                    metrics.append(metric)
        for metric in metrics:
            m = _value(multi, task, metric)
            s = _value(share, task, metric)
            w = _value(whole, task, metric)
            rows.append([task, metric, _cell(m), _cell(s), iterations[task],
                         _tax(s, m), _cell(w), _tax(w, m)])
    return rows


def table_header(max_iters: int) -> List[str]:
    return [
        'entry', 'metric', f'multi-task ({max_iters} it.)',
        'alone, its iterations', 'its iterations', 'tax (its it.)',
        f'alone ({max_iters} it.)', f'tax ({max_iters} it.)'
    ]


def data_name(cfg) -> str:
    """The name of the config's data: the folder of ``data_root``, else of
    the first training entry's data set."""
    root = cfg.get('data_root')
    if not root:
        first = next(iter(cfg.train_dataloader.values()))
        root = first['dataloader']['dataset'].get('data_root', '')
    return osp.basename(osp.normpath(root)) if root else 'data'


class Timer:
    """The rough time left of a measurement: each run still to train at the
    time per iteration measured for its entries (an entry's share run
    tells its whole run's), else at the mean of all trained so far, plus
    the mean test time."""

    def __init__(self) -> None:
        self.seconds: Dict[Tuple[str, ...], float] = {}
        self.iterations: Dict[Tuple[str, ...], int] = {}
        self.test_seconds: List[float] = []

    def add(self, run: PlannedRun, result: dict) -> None:
        key = tuple(run.entries)
        self.seconds[key] = self.seconds.get(key, 0.0) + \
            result['train_seconds']
        self.iterations[key] = self.iterations.get(key, 0) + run.iterations
        self.test_seconds.append(result['test_seconds'])

    def left(self, runs: Sequence[PlannedRun]) -> str:
        """``', about N min left'`` for ``runs``; empty before the first
        trained run or when nothing is left."""
        done = sum(self.iterations.values())
        if not done or not runs:
            return ''
        mean = sum(self.seconds.values()) / done
        seconds = sum(
            r.iterations * (self.seconds[tuple(r.entries)] /
                            self.iterations[tuple(r.entries)]
                            if tuple(r.entries) in self.iterations else mean)
            for r in runs)
        seconds += len(runs) * sum(self.test_seconds) / len(
            self.test_seconds)
        return f', about {seconds / 60:.1f} min left'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config

    from mmupv2.engine.runner.entry_runs import (
        cut_schedule,
        entry_iterations,
    )
    from mmupv2.utils.benchmark_table import markdown_table, write_section

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=args.seed)
    if args.max_iters is not None:
        cut_schedule(cfg, args.max_iters)
    max_iters = int(cfg.train_cfg.max_iters)
    tasks = choose_tasks(cfg, args.tasks)
    iterations = entry_iterations(cfg)
    multi, multi_source = (None, None)
    if args.multi_task:
        multi, multi_source = read_multi_task(args.multi_task)
        missing = [t for t in tasks if t not in multi]
        if missing:
            print(f'note: {multi_source} has no metric of {missing} '
                  f'(it has {sorted(multi)})')
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'single_task_baselines',
        osp.splitext(osp.basename(args.config))[0])

    runs = plan_runs(tasks, args.budgets, iterations, max_iters,
                     args.train_multi_task)
    sampling = cfg.train_cfg.get('sampling', 'unmixed')
    print(f'{osp.basename(args.config)}: {max_iters} iterations of '
          f'{sampling} sampling, seed {cfg.randomness.get("seed")}; '
          'iterations per entry in the multi-task run: ' +
          ', '.join(f'{k} {v}' for k, v in iterations.items()))
    print(f'{len(runs)} run(s), {sum(r.iterations for r in runs)} training '
          f'iterations in all, into {work_dir}: ' +
          ', '.join(f'{r.name} ({r.iterations})' for r in runs))

    results: Dict[str, dict] = {}
    timer = Timer()
    for i, run in enumerate(runs):
        print(f'[{i + 1}/{len(runs)}] {run.name}: {",".join(run.entries)} '
              f'for {run.iterations} iterations', flush=True)
        result, reused = run_or_reuse(cfg, run, work_dir)
        results[run.name] = result
        if not reused:
            timer.add(run, result)
        print(f'[{i + 1}/{len(runs)}] {run.name}: ' +
              ('reused ' + osp.join(work_dir, run.name, 'result.json')
               if reused else
               f'trained in {result["train_seconds"]:.0f} s, tested in '
               f'{result["test_seconds"]:.0f} s') +
              f': {json.dumps(result["main"])}' +
              timer.left(runs[i + 1:]),
              flush=True)

    if args.train_multi_task:
        multi = results[MULTI_TASK_RUN]['main']
        multi_source = osp.join(work_dir, MULTI_TASK_RUN, 'result.json')
    share, whole = {}, {}
    for task in tasks:
        for budget, into in (('share', share), ('whole', whole)):
            run = results.get(f'{task}_{budget}')
            if budget == 'whole' and run is None and \
                    iterations[task] == max_iters:
                run = results.get(f'{task}_share')  # the same training
            if run is not None:
                into[task] = run['main'].get(task, {})
    header = table_header(max_iters)
    rows = table_rows(tasks, multi, share, whole, iterations)
    table = markdown_table(header, rows)
    print(table)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'baselines.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'baselines.json'), 'w') as f:
        json.dump(dict(config=args.config, max_iters=max_iters,
                       sampling=sampling, seed=cfg.randomness.get('seed'),
                       iterations=iterations, multi_task=multi,
                       multi_task_source=multi_source, share=share,
                       whole=whole, runs=results), f, indent=2)
    print(f'table and results written to {work_dir}/baselines.{{md,json}}')
    if args.write:
        command = ' '.join(['python tools/analysis_tools/'
                            'single_task_baselines.py'] + sys.argv[1:])
        seconds = sum(r['train_seconds'] + r['test_seconds']
                      for r in results.values())
        title = (f'Single-task baselines: {osp.basename(args.config)} on '
                 f'{data_name(cfg)}')
        write_section(
            args.write, title,
            f'`{command}`: each task entry trained alone (the same model '
            f'and recipe, its w_k kept, s_k = 1, the schedule cut to the '
            f'run) for the iterations the multi-task run of {max_iters} '
            f'iterations ({sampling} sampling, seed '
            f'{cfg.randomness.get("seed")}) gives it ("its iterations") '
            f'and for all {max_iters}; val split, 0-100; "tax": alone − '
            f'multi-task (positive: the generalist is behind). Multi-task '
            f'result: `{multi_source or "not given"}`. {len(runs)} run(s), '
            f'{seconds / 60:.1f} min of training and testing.', header, rows)
        print(f'"{title}" written to {args.write}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
