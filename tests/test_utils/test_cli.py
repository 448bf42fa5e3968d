# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmupv2.utils.cli: the options and job set-up the command-line tools
share (tools/train.py and tools/test.py run them end to end in
tests/test_tools/test_train_test.py)."""
import argparse
import os
import os.path as osp

import pytest
from mmengine.config import Config

from mmupv2.utils import cli


def _job_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    cli.add_cfg_options(parser)
    cli.add_trust_checkpoint(parser, 'IN_FILE')
    return parser


def test_parse_job_args_exports_local_rank(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = cli.parse_job_args(
        _job_parser(),
        ['c.py', '--launcher', 'pytorch', '--local-rank', '3',
         '--trust-checkpoint', '--cfg-options', 'a.b=1'])
    assert (args.launcher, args.local_rank) == ('pytorch', 3)
    assert args.trust_checkpoint and args.cfg_options == {'a.b': 1}
    assert os.environ['LOCAL_RANK'] == '3'

    # the launcher's LOCAL_RANK wins over the option
    monkeypatch.setenv('LOCAL_RANK', '1')
    args = cli.parse_job_args(_job_parser(), ['c.py', '--local_rank', '5'])
    assert (args.launcher, args.trust_checkpoint) == ('none', False)
    assert os.environ['LOCAL_RANK'] == '1'

    with pytest.raises(SystemExit):
        cli.parse_job_args(_job_parser(), ['c.py', '--launcher', 'ssh'])


def test_trust_checkpoint_help_names_the_files():
    text = _job_parser().format_help()
    assert 'read IN_FILE with torch.load(weights_only=False)' in ' '.join(
        text.split())


def test_merge_job_args_work_dir_priority():
    parser = _job_parser()
    cfg = Config(dict(a=dict(b=0)))
    cli.merge_job_args(cfg, cli.parse_job_args(
        parser, ['configs/x/my_cfg.py', '--cfg-options', 'a.b=2']))
    assert cfg.launcher == 'none' and cfg.a.b == 2
    assert cfg.work_dir == osp.join('./work_dirs', 'my_cfg')

    cfg = Config(dict(work_dir='from_config'))  # the config's
    cli.merge_job_args(cfg, cli.parse_job_args(_job_parser(), ['x.py']))
    assert cfg.work_dir == 'from_config'

    cfg = Config(dict(work_dir='from_config'))  # the command line's
    cli.merge_job_args(cfg, cli.parse_job_args(
        _job_parser(), ['x.py', '--work-dir', 'w', '--launcher', 'slurm']))
    assert (cfg.work_dir, cfg.launcher) == ('w', 'slurm')
