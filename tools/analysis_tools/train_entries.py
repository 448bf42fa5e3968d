# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Train and evaluate a multi-task config on some of its entries only: a
quick experiment (does this task learn alone? with that one?).

    python tools/analysis_tools/train_entries.py CONFIG \
        --entries classification,captioning --iters 200 \
        [--cfg-options optim_wrapper.optimizer.lr=2e-4] \
        [--work-dir work_dirs/entries]

``train_dataloader`` keeps the named entries (their ``s_k`` are
renormalised by the loop), ``val_dataloader`` / ``val_evaluator`` the
evaluated ones among them; the schedule is cut to ``--iters``. Prints one
line with the training time and the main metric of each evaluated task;
the last checkpoint is written to the work dir (inspect it with
``decoder_health.py``).
"""
import argparse
import json
import sys
import time

#: the metrics printed (suffixes of the test loop's keys)
MAIN_METRICS = ('top1', 'bbox_mAP', 'segm_mAP', 'BLEU-4', 'CIDEr',
                'i2t_R@1', 't2i_R@1')


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

    from mmupv2.engine.runner.launch import build_runner

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    entries = args.entries.split(',')
    unknown = set(entries) - set(cfg.train_dataloader)
    if unknown:
        raise KeyError(f'--entries: {sorted(unknown)} not in the config\'s '
                       f'train_dataloader ({sorted(cfg.train_dataloader)})')
    cfg.train_dataloader = {k: cfg.train_dataloader[k] for k in entries}
    evaluated = [e for e in entries if e in cfg.val_dataloader]
    cfg.val_dataloader = {k: cfg.val_dataloader[k] for k in evaluated}
    cfg.val_evaluator = {k: cfg.val_evaluator[k] for k in evaluated}
    cfg.test_dataloader, cfg.test_evaluator = (cfg.val_dataloader,
                                               cfg.val_evaluator)
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters + 1
    for scheduler in cfg.get('param_scheduler', []):
        scheduler.end = min(scheduler.get('end', args.iters), args.iters)
        scheduler.begin = min(scheduler.get('begin', 0), args.iters - 1)
    cfg.work_dir = args.work_dir or 'work_dirs/entries_' + '_'.join(entries)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=args.iters, by_epoch=False)
    runner = build_runner(cfg)
    start = time.time()
    runner.train()
    train_time = time.time() - start
    metrics = {} if not evaluated else runner.test()
    main = {
        k: round(float(v), 4)
        for k, v in metrics.items() if k.split('/')[-1] in MAIN_METRICS
    }
    print(f'entries {args.entries}, {args.iters} iterations, training '
          f'{train_time:.0f} s: {json.dumps(main)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
