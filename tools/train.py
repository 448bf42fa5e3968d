# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Train a Uni-Perceiver v2 model (mmdet's ``tools/train.py`` for mmupv2).

Examples::

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
    bash tools/dist_train.sh CONFIG GPUS [ARGS]          # torchrun
    GPUS=16 bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [ARGS]

Checkpoints (``--resume``, ``load_from``, pretrained ``init_cfg``) are read
weights-only (``--trust-checkpoint`` to read a trusted legacy pickle; see
``docs/checkpoints.md``). See ``docs/train_test.md``.
"""
import argparse
from typing import List, Optional

from mmengine.config import Config

from mmupv2.engine.runner.launch import process_group_teardown
from mmupv2.engine.runner.run_length import fit_schedulers_to_run
from mmupv2.utils import cli, safe_checkpoint_loading


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a Uni-Perceiver v2 model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (AmpOptimWrapper '
        "with loss_scale='dynamic')")
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    cli.add_cfg_options(parser)
    cli.add_trust_checkpoint(
        parser, 'checkpoints (--resume, load_from, pretrained init_cfg)')
    return cli.parse_job_args(parser, argv)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg`` (in place), as mmdet does.

    Iteration-based schedulers that reach beyond ``train_cfg.max_iters``
    are clamped to it, with a warning
    (:func:`~mmupv2.engine.runner.run_length.fit_schedulers_to_run`).

    Raises:
        ValueError: ``--amp`` with DeepSpeed, whose precision is set in
            ``strategy`` (``fp16`` / ``bf16``), not by the optim wrapper.
    """
    cli.merge_job_args(cfg, args)

    # a shortened run (--cfg-options train_cfg.max_iters=N) gets the whole
    # schedule: every iteration-based scheduler ends by N (logged)
    fit_schedulers_to_run(cfg)

    # enable automatic-mixed-precision training
    if args.amp is True:
        if cfg.optim_wrapper.get('type') in ('DeepSpeedOptimWrapper',
                                             'MultiTaskDeepSpeedOptimWrapper'):
            raise ValueError(
                '--amp sets optim_wrapper.type=AmpOptimWrapper, which '
                "DeepSpeed does not use; set strategy.fp16=dict(enabled=True)"
                ' or strategy.bf16=dict(enabled=True) instead')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    # resume is determined in this priority: resume from > auto_resume
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)

    # Runner, or FlexibleRunner if runner_type='FlexibleRunner', or the
    # registered runner_type; on CPUs with a gloo process group
    runner = cli.build_job_runner(args, merge_args)

    # start training; mmengine reads every checkpoint through mmupv2's
    # weights-only loader meanwhile (docs/checkpoints.md)
    with safe_checkpoint_loading(
            trust=True if args.trust_checkpoint else None):
        runner.train()


if __name__ == '__main__':
    # every rank waits for the others, then ends its process group: no rank
    # aborts at exit while another still talks to it
    with process_group_teardown():
        main()
