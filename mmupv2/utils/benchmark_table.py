# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Write benchmark results into ``docs/benchmark.md`` one section at a time,
so each benchmark script updates its own table and leaves the others."""
import datetime
import os.path as osp
import platform
import re
from typing import List, Sequence

import torch


def markdown_table(header: Sequence[str], rows: List[Sequence]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def write_section(path: str, title: str, description: str,
                  header: Sequence[str], rows: List[Sequence]) -> None:
    """Replace (or append) the ``## title`` section of the markdown file
    ``path`` with a description, the machine, the date and a table."""
    machine = (f'{platform.processor() or platform.machine()}, torch '
               f'{torch.__version__}, {datetime.date.today().isoformat()}')
    body = (f'## {title}\n\n{description}\n\nMeasured on: {machine}.\n\n'
            f'{markdown_table(header, rows)}\n')
    text = open(path).read() if osp.exists(path) else (
        '# Benchmarks\n\nEach section is written by the script it names; '
        'ratios are measured against a baseline in the same run.\n')
    pattern = re.compile(rf'^## {re.escape(title)}\n.*?(?=^## |\Z)',
                         re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + '\n', text).rstrip() + '\n'
    else:
        text = text.rstrip() + '\n\n' + body
    with open(path, 'w') as f:
        f.write(text)
