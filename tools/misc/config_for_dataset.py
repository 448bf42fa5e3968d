# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Write a copy of a config that reads another data set.

The demo config keeps everything that depends on the data in one block of
top-level variables (``data_root``, ``classes``, ``img_prefix``, the
annotation files, ``img_scale``; docs/custom_dataset.md). This tool copies
the config, replaces those variables, and points the copy's ``_base_``
files back at the original ones, so the copy can live anywhere::

    python tools/misc/config_for_dataset.py \\
        configs/uniperceiver_v2/upv2_lite0-minilm_shapes.py \\
        --out configs/my_set.py \\
        --classes-file data/my_set/classification/classes.txt \\
        --set data_root=data/my_set/ karpathy_val_split=test

A value is read as a Python literal when it is one (``img_scale=(224,224)``)
and as a string otherwise (``data_root=data/my_set/``). A variable that the
config does not assign is an error naming the config; nothing is written.
"""
import argparse
import ast
import os
import os.path as osp
import re
import sys
from typing import Any, Dict, List


def parse_value(text: str) -> Any:
    """``'(224, 224)'`` -> a tuple; ``'data/x/'`` -> the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def replace_assignments(text: str, values: Dict[str, Any],
                        source: str) -> str:
    """Replace the top-level ``name = ...`` of each variable (possibly over
    several lines, up to the next top-level statement or comment).

    Raises:
        KeyError: a variable is not assigned at the top level of ``text``;
            the message names it and ``source``.
    """
    for name, value in values.items():
        pattern = re.compile(rf'^{re.escape(name)} = .*?(?=^\w|^#|\Z)',
                             re.M | re.S)
        if not pattern.search(text):
            raise KeyError(f'{source} has no top-level "{name} = ..." to '
                           'replace')
        line = f'{name} = {value!r}\n'
        text = pattern.sub(lambda _, line=line: line, text, count=1)
    return text


def rebase(text: str, source_dir: str, out_dir: str) -> str:
    """Rewrite the relative paths in ``_base_ = ...`` so that they resolve
    from ``out_dir`` to the same files they named from ``source_dir``."""
    match = re.search(r'^_base_ = (\[.*?\]|\'[^\']*\'|"[^"]*")', text,
                      re.M | re.S)
    if match is None:
        return text

    def move(path_match: re.Match) -> str:
        path = path_match.group(2)
        if osp.isabs(path):
            return path_match.group(0)
        target = osp.normpath(osp.join(source_dir, path))
        return repr(osp.relpath(target, out_dir))

    block = re.sub(r'([\'"])(.*?)\1', move, match.group(1))
    return text[:match.start(1)] + block + text[match.end(1):]


def config_for_dataset(config: str, out: str, values: Dict[str, Any]) -> str:
    """Write ``out``: ``config`` with ``values`` assigned instead of its own;
    returns ``out``."""
    with open(config, encoding='utf-8') as f:
        text = f.read()
    text = replace_assignments(text, values, config)
    out_dir = osp.dirname(osp.abspath(out))
    text = rebase(text, osp.dirname(osp.abspath(config)), out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.write(text)
    return out


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Copy a config, pointing its data block at another '
        'data set')
    parser.add_argument('config', help='the config to copy')
    parser.add_argument('--out', required=True, help='the copy to write')
    parser.add_argument(
        '--set', nargs='+', default=[], metavar='NAME=VALUE',
        help='data-block variables to assign (data_root=..., '
        'coco_train=..., img_scale=(224,224), ...)')
    classes = parser.add_mutually_exclusive_group()
    classes.add_argument('--classes', nargs='+', help='the class names')
    classes.add_argument(
        '--classes-file', help='a file with one class name per line')
    return parser.parse_args(argv)


def main(argv: List[str] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    values: Dict[str, Any] = {}
    for item in args.set:
        name, sep, value = item.partition('=')
        if not sep or not name.isidentifier():
            print(f'--set expects NAME=VALUE, got {item!r}', file=sys.stderr)
            return 2
        values[name] = parse_value(value)
    if args.classes_file:
        with open(args.classes_file, encoding='utf-8') as f:
            values['classes'] = tuple(
                line.strip() for line in f if line.strip())
    elif args.classes:
        values['classes'] = tuple(args.classes)
    if not values:
        print('nothing to change: give --set and/or --classes',
              file=sys.stderr)
        return 2
    try:
        out = config_for_dataset(args.config, args.out, values)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 2
    print(f'wrote {out}: {args.config} with ' +
          ', '.join(f'{k} = {v!r}' for k, v in values.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
