# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What the command-line tools share: mmdet's ``--cfg-options``, the
checkpoint trust switch, and the job set-up of ``tools/train.py`` and
``tools/test.py`` (launcher options, the config merged with the command
line, the runner).

Flow of a job tool::

    parser (tool options) ─► parse_job_args: + --launcher/--local-rank,
        LOCAL_RANK exported ─► args
    args ─► build_job_runner(args, merge_args): Config.fromfile(args.config)
        ─► merge_args(cfg, args) (the tool's; starts with merge_job_args)
        ─► prepare_cpu_distributed ─► build_runner ─► runner
"""
import argparse
import os
import os.path as osp
from typing import Callable, List, Optional

from mmengine.config import Config, DictAction

#: mmengine's job launchers (``Runner(launcher=...)``).
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Add mmdet's ``--cfg-options key=value ...`` (parsed by mmengine's
    ``DictAction`` into a dict, or None when not given) to ``parser``;
    merge it with ``cfg.merge_from_dict(args.cfg_options)``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')


def add_trust_checkpoint(parser: argparse.ArgumentParser,
                         what: str = 'CHECKPOINT') -> None:
    """Add ``--trust-checkpoint`` (``args.trust_checkpoint``, a bool): read
    ``what`` with ``torch.load(weights_only=False)``. Without it checkpoints
    are read weights-only (``docs/checkpoints.md``).

    Args:
        parser: the tool's parser.
        what: the files it applies to, as the help names them.
    """
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help=f'read {what} with torch.load(weights_only=False), which may '
        'run code stored in the file: only for files you trust (see '
        'docs/checkpoints.md)')


def parse_job_args(parser: argparse.ArgumentParser,
                   argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Add the launcher options to a job tool's ``parser`` and parse.

    Adds ``--launcher`` (one of :data:`LAUNCHERS`, default ``'none'``) and
    ``--local-rank`` / ``--local_rank`` (``torch.distributed.launch``
    passes it since PyTorch 2.0), then exports ``--local-rank`` as
    ``LOCAL_RANK`` unless the launcher has set it.

    Args:
        parser: the tool's parser, with its own options.
        argv: the command line; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: the parsed arguments.
    """
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_job_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply what every job tool's command line sets to ``cfg`` (in
    place), as mmdet does: ``cfg.launcher``, ``--cfg-options``, and
    ``work_dir`` (``--work-dir`` > the config's > ``./work_dirs/<config
    file name>``).

    Args:
        cfg: the config of ``args.config``.
        args: with ``launcher``, ``cfg_options``, ``work_dir``, ``config``.

    Returns:
        Config: ``cfg``.
    """
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_job_runner(args: argparse.Namespace,
                     merge_args: Callable[[Config, argparse.Namespace],
                                          Config]):
    """The runner of a job tool: the config of ``args.config`` with the
    command line merged by ``merge_args``, a gloo process group and CPU
    model wrappers when there is no GPU, then ``Runner`` (or
    ``FlexibleRunner`` / the registered ``runner_type``).

    Also limits dynamo's recompilations (mmdet's
    ``setup_cache_size_limit_of_dynamo``).

    Args:
        args: the parsed command line (``args.config`` is read).
        merge_args: the tool's ``merge_args(cfg, args)``.

    Returns:
        Runner | FlexibleRunner: built, not started.
    """
    from mmdet.utils import setup_cache_size_limit_of_dynamo

    from mmupv2.engine.runner.launch import (
        build_runner,
        prepare_cpu_distributed,
    )
    setup_cache_size_limit_of_dynamo()
    # its default_scope ('mmupv2') finds mmupv2's modules
    cfg = Config.fromfile(args.config)
    merge_args(cfg, args)
    prepare_cpu_distributed(cfg)
    return build_runner(cfg)
