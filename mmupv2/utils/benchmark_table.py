# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What the benchmark scripts share: their common options, the GPUs'
peak throughput, timing variants in turn, and writing results into
``docs/benchmark.md`` one section at a time, so each script updates its own
table and leaves the others."""
import argparse
import datetime
import os.path as osp
import platform
import re
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

#: Dense bf16 tensor-core peak (TFLOP/s) by a substring of the device name,
#: first match wins (NVIDIA data sheets; SXM where a name does not say).
PEAK_BF16_TFLOPS = (
    ('H100 PCIe', 756.0),
    ('H100 NVL', 835.0),
    ('H200', 989.4),
    ('H100', 989.4),
    ('GH200', 989.4),
    ('B200', 2250.0),
    ('A100', 312.0),
    ('L40S', 362.1),
    ('L40', 181.0),
    ('L4', 121.0),
    ('A10', 125.0),
)


def peak_tflops(device_name: str,
                override: Optional[float] = None) -> Optional[float]:
    """The dense bf16 peak of a GPU by name (None: unknown)."""
    if override:
        return override
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def parse_benchmark_args(parser: argparse.ArgumentParser,
                         repeats: int,
                         argv: Optional[List[str]] = None
                         ) -> argparse.Namespace:
    """Add ``--repeats`` (default ``repeats``), ``--threads`` (for
    ``torch.set_num_threads``; default torch's) and ``--write`` (the
    markdown file to update) to a benchmark's ``parser``, parse, and set
    the threads.

    Returns:
        argparse.Namespace: the parsed arguments.
    """
    parser.add_argument('--repeats', type=int, default=repeats)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--write', default=None,
                        help='markdown file to update (docs/benchmark.md)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def time_in_turn(fns: Dict[str, Callable[[], object]],
                 repeats: int,
                 warmup: int = 1) -> Dict[str, Tuple[float, float]]:
    """Time the functions in turn, round after round, so that load from
    other processes hits all alike; the first ``warmup`` rounds are not
    counted.

    Args:
        fns: ``{name: function}``; the first is the baseline.
        repeats: measured rounds.
        warmup: rounds run before.

    Returns:
        dict: per name, the median time (s) and the median per-round ratio
        of its time to the first function's (< 1: faster than it).
    """
    times = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    base = times[next(iter(fns))]
    return {
        name: (statistics.median(ts),
               statistics.median(t / b for t, b in zip(ts, base)))
        for name, ts in times.items()
    }


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
