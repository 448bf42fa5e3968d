# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Print the whole config, as ``tools/train.py`` would run it (mmdet's
``tools/misc/print_config.py``)::

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...]
        [--save-path resolved.py]

``_base_`` files are merged, ``{{_base_.x}}`` references and ``${key}``
interpolations resolved, then the ``--cfg-options`` overrides applied (the
same order as the other tools). A multi-task config prints every entry of
its ``train_dataloader`` / ``val_dataloader`` in full.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmdet.utils import replace_cfg_vals
from mmengine.config import Config

SUFFIXES = ('.py', '.json', '.yml', '.yaml')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--save-path',
        default=None,
        help='save the resolved config there, suffixed with '
        f'{", ".join(SUFFIXES)}')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def resolved_config(config: str, cfg_options: Optional[dict] = None
                    ) -> Config:
    """The config file with its bases merged, ``${key}`` replaced and the
    overrides applied."""
    cfg = replace_cfg_vals(Config.fromfile(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.save_path is not None and osp.splitext(
            args.save_path)[-1] not in SUFFIXES:
        raise ValueError(f'--save-path {args.save_path!r}: the suffix must be'
                         f' one of {", ".join(SUFFIXES)}')
    cfg = resolved_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        folder = osp.dirname(args.save_path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        cfg.dump(args.save_path)
        print(f'Config saving at {args.save_path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
