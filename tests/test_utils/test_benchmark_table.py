# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmupv2.utils.benchmark_table: what the benchmark scripts share."""
import argparse
import time

import torch

from mmupv2.utils.benchmark_table import (
    parse_benchmark_args,
    time_in_turn,
    write_section,
)


def test_time_in_turn_runs_in_turn_and_gives_ratios():
    calls = []

    def fast():
        calls.append('fast')

    def slow():
        calls.append('slow')
        time.sleep(0.002)

    result = time_in_turn(dict(fast=fast, slow=slow), repeats=3, warmup=1)
    assert calls == ['fast', 'slow'] * 4  # in turn, warm-up included
    assert list(result) == ['fast', 'slow']
    assert result['fast'][1] == 1.0  # the baseline's ratio to itself
    assert result['slow'][0] >= 0.002 and result['slow'][1] > 1.0


def test_parse_benchmark_args_sets_threads():
    threads = torch.get_num_threads()
    try:
        parser = argparse.ArgumentParser()
        parser.add_argument('--size', type=int, default=1)
        args = parse_benchmark_args(parser, repeats=7, argv=['--threads', '1'])
        assert (args.size, args.repeats, args.threads, args.write) == (
            1, 7, 1, None)
        assert torch.get_num_threads() == 1
        args = parse_benchmark_args(
            argparse.ArgumentParser(), repeats=5,
            argv=['--repeats', '2', '--write', 'b.md'])
        assert (args.repeats, args.threads, args.write) == (2, None, 'b.md')
    finally:
        torch.set_num_threads(threads)


def test_write_section_replaces_its_own_section(tmp_path):
    path = str(tmp_path / 'benchmark.md')
    write_section(path, 'A', 'first', ['x'], [[1]])
    write_section(path, 'B', 'other', ['y'], [[2]])
    write_section(path, 'A', 'second', ['x'], [[3]])
    text = open(path).read()
    assert text.count('## A') == 1 and 'second' in text
    assert 'first' not in text and '## B' in text and '| 3 |' in text
