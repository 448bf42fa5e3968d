# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Train and evaluate a multi-task config on some of its entries only: a
quick experiment (does this task learn alone? with that one?).

    python tools/analysis_tools/train_entries.py CONFIG \
        --entries classification,captioning --iters 200 \
        [--cfg-options optim_wrapper.optimizer.lr=2e-4] \
        [--work-dir work_dirs/entries]

``train_dataloader`` keeps the named entries (their ``s_k`` are
renormalised by the loop), ``val_dataloader`` / ``val_evaluator`` the
evaluated ones among them; the schedule is cut to ``--iters``
(:func:`mmupv2.engine.runner.entry_runs.entries_config`). Prints one line
with the training time and the main metric of each evaluated task; the
last checkpoint is written to the work dir (inspect it with
``decoder_health.py``). ``single_task_baselines.py`` runs this for every
entry at the iterations it gets in the multi-task run.
"""
import argparse
import json
import sys


def parse_args() -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--entries', required=True,
                        help='comma-separated entries of train_dataloader')
    parser.add_argument('--iters', type=int, required=True)
    parser.add_argument('--work-dir', default=None)
    add_cfg_options(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from mmengine.config import Config

    from mmupv2.engine.runner.entry_runs import (
        MAIN_METRICS,
        entries_config,
        train_and_test,
    )
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    entries = args.entries.split(',')
    cfg = entries_config(
        cfg, entries, args.iters,
        args.work_dir or 'work_dirs/entries_' + '_'.join(entries))
    run = train_and_test(cfg)
    main = {
        k: round(v, 4)
        for k, v in run.metrics.items() if k.split('/')[-1] in MAIN_METRICS
    }
    print(f'entries {args.entries}, {args.iters} iterations, training '
          f'{run.train_seconds:.0f} s: {json.dumps(main)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
