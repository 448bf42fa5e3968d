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
import os
import os.path as osp
from typing import List, Optional

from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config

from mmupv2.engine.runner.launch import (
    build_runner,
    prepare_cpu_distributed,
    process_group_teardown,
)
from mmupv2.utils import safe_checkpoint_loading

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
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
    add_cfg_options(parser)
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='read checkpoints with torch.load(weights_only=False): they may '
        'run code stored in the file; only for files you trust (see '
        'docs/checkpoints.md)')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes `--local-rank` since PyTorch 2.0
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg`` (in place), as mmdet does.

    Raises:
        ValueError: ``--amp`` with DeepSpeed, whose precision is set in
            ``strategy`` (``fp16`` / ``bf16``), not by the optim wrapper.
    """
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    # enable automatic-mixed-precision training
    if args.amp is True:
        if cfg.optim_wrapper.get('type') == 'DeepSpeedOptimWrapper':
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

    # Reduce the number of repeated compilations and improve
    # training speed.
    setup_cache_size_limit_of_dynamo()

    # load config; its default_scope ('mmupv2') finds mmupv2's modules
    cfg = Config.fromfile(args.config)
    merge_args(cfg, args)

    # gloo process group and CPU model wrappers when there is no GPU
    prepare_cpu_distributed(cfg)

    # Runner, or FlexibleRunner if runner_type='FlexibleRunner', or the
    # registered runner_type
    runner = build_runner(cfg)

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
