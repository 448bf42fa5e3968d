# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Evaluate a checkpoint on every task and data set of a config in one run
(mmdet's ``tools/test.py`` for mmupv2).

Prints one table of (task, data set, metric, value) and, with
``--out-metrics FILE``, writes the same rows as JSON. ``--out FILE`` writes
the raw predictions of every data set in the format its metric reads
(COCO results JSON, caption JSON, score / similarity arrays), one file per
data set; ``--show-dir DIR`` draws the predictions of every test image
into ``DIR/<data set>/``. Examples::

    python tools/test.py CONFIG CHECKPOINT [--out-metrics metrics.json]
        [--out results.pkl] [--show-dir vis]
        [--allow-partial] [--trust-checkpoint]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]     # torchrun

The checkpoint is read weights-only and must fit the model exactly (see
``docs/checkpoints.md``): a checkpoint of another model is an error that
lists the keys that do not fit. See ``docs/train_test.md``.
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log

from mmupv2.engine.hooks import TaskVisualizationHook
from mmupv2.engine.runner.launch import process_group_teardown
from mmupv2.engine.runner.metrics_summary import (
    dump_rows,
    loop_dataset_tasks,
    metrics_to_rows,
    rows_to_table,
)
from mmupv2.engine.runner.test_outputs import add_dump_metrics
from mmupv2.utils import cli, load_runner_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a Uni-Perceiver v2 model on every '
        'data set of its config')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out-metrics',
        metavar='FILE',
        help='write the summary (task, data set, metric, value) as JSON')
    parser.add_argument(
        '--out',
        metavar='FILE',
        help='write the raw predictions of every data set NAME, in the '
        'format its metric reads: FILE.NAME.bbox.json / .segm.json (COCO '
        'results), FILE.NAME.json (captions), FILE.NAME.pkl (classification'
        ' scores, retrieval similarities); an extension .pkl / .pickle / '
        '.json of FILE is dropped, a folder FILE/ gets FILE/NAME.* (see '
        'docs/train_test.md)')
    parser.add_argument(
        '--show-dir',
        metavar='DIR',
        help='draw the predictions of every test image into DIR/NAME/ (per '
        'data set NAME); a relative DIR is taken under '
        'WORK_DIR/TIMESTAMP/, as in mmdet')
    parser.add_argument(
        '--show-score-thr',
        type=float,
        default=0.3,
        help='score threshold of the boxes and masks drawn by --show-dir')
    cli.add_cfg_options(parser)
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='load only the tensors of CHECKPOINT that fit the model (with a '
        'warning listing the others) instead of stopping with an error')
    cli.add_trust_checkpoint(parser, 'CHECKPOINT')
    return cli.parse_job_args(parser, argv)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg`` (in place), as mmdet does."""
    cli.merge_job_args(cfg, args)
    # main() loads args.checkpoint itself: strictly and weights-only
    cfg.load_from = None
    return cfg


def add_test_outputs(runner, args: argparse.Namespace) -> Dict[str, list]:
    """``--out``: a metric that writes the raw predictions appended to every
    data set's evaluator; ``--show-dir``: :class:`TaskVisualizationHook`.

    Returns:
        dict: ``{data set name: [files --out will write]}``.
    """
    files = {}
    if args.out:
        files = add_dump_metrics(runner.test_loop, args.out)
    if args.show_dir:
        runner.register_hook(
            TaskVisualizationHook(
                out_dir=args.show_dir, score_thr=args.show_score_thr),
            priority='LOW')
    return files


def summarize(metrics: Dict[str, object], test_loop,
              args: argparse.Namespace) -> str:
    """Log one table of all metrics and write ``--out-metrics`` (rank 0).

    Returns:
        str: the table.
    """
    rows = metrics_to_rows(metrics, loop_dataset_tasks(test_loop))
    table = rows_to_table(rows, title=f'Test: {osp.basename(args.checkpoint)}')
    if is_main_process():
        print_log('\n' + table, logger='current')
        if args.out_metrics:
            dump_rows(
                rows,
                args.out_metrics,
                config=args.config,
                checkpoint=args.checkpoint)
            print_log(
                f'metrics written to {args.out_metrics}', logger='current')
    return table


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)

    # the runner of the config, on CPUs with a gloo process group
    runner = cli.build_job_runner(args, merge_args)

    # the weights: every key must fit (--allow-partial), read weights-only
    # (--trust-checkpoint), see docs/checkpoints.md
    load_runner_checkpoint(
        runner, args.checkpoint, strict=not args.allow_partial,
        trust=True if args.trust_checkpoint else None)

    # --out / --show-dir: per data set, a dump metric / the drawing hook
    files = add_test_outputs(runner, args)

    # start testing: every data set of test_dataloader (MultiTaskTestLoop)
    metrics = runner.test()
    summarize(metrics, runner.test_loop, args)
    if files and is_main_process():
        written = '\n'.join(f'  {name}: {", ".join(paths)}'
                            for name, paths in files.items())
        print_log(f'raw predictions (--out):\n{written}', logger='current')


if __name__ == '__main__':
    # every rank waits for the others, then ends its process group: no rank
    # aborts at exit while another still talks to it
    with process_group_teardown():
        main()
