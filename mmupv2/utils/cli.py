# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The command-line option every tool shares: mmdet's ``--cfg-options``."""
import argparse

from mmengine.config import DictAction


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
