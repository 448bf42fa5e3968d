# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Time MTAdamW.step() against torch.optim.AdamW(foreach=True).

Both optimizers update the same ~100 M-parameter model (a stack of linear
layers of BERT-base widths) with the same fixed gradients; the ratio of the
median step times is the figure of merit (target <= 1.3x).

    python tools/analysis_tools/benchmark_mt_adamw.py [--params-m 100] \
        [--repeats 7] [--write docs/benchmark.md]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from mmupv2.engine.optimizers import MTAdamW
from mmupv2.utils.benchmark_table import write_section


def build_model(params_m: float) -> nn.Module:
    """Linear 768->3072->768 blocks until ~``params_m`` million params."""
    per_block = 2 * 768 * 3072 + 3072 + 768
    blocks = max(1, round(params_m * 1e6 / per_block))
    layers = []
    for _ in range(blocks):
        layers += [nn.Linear(768, 3072), nn.Linear(3072, 768)]
    return nn.Sequential(*layers)


def time_steps(optimizer, params, grads, repeats: int, warmup: int = 2):
    for p, g in zip(params, grads):
        p.grad = g
    times = []
    for i in range(warmup + repeats):
        if isinstance(optimizer, MTAdamW):
            optimizer.set_task(sampling_ratio=0.3, scale=1.0)
        start = time.perf_counter()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--params-m', type=float, default=100)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--write', default=None,
                        help='markdown file to update (docs/benchmark.md)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.params_m)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    grads = [torch.randn_like(p) for p in params]
    results = {}
    for name, make in (
        ('torch.optim.AdamW(foreach=True)',
         lambda: torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4,
                                   foreach=True)),
        ('MTAdamW', lambda: MTAdamW(params, lr=1e-4, weight_decay=1e-4)),
    ):
        results[name] = time_steps(make(), params, grads, args.repeats)
        print(f'{name:35s} median step {results[name] * 1e3:8.1f} ms')
    base = results['torch.optim.AdamW(foreach=True)']
    ratio = results['MTAdamW'] / base
    print(f'ratio MTAdamW / AdamW: {ratio:.2f}x (target <= 1.3x)')
    if args.write:
        rows = [[name, f'{t * 1e3:.1f}', f'{t / base:.2f}x']
                for name, t in results.items()]
        write_section(
            args.write, 'MTAdamW step time',
            f'{n_params / 1e6:.1f} M parameters, CPU, '
            f'{torch.get_num_threads()} threads, median of {args.repeats} '
            'steps after 2 warm-up steps. Command: `python '
            'tools/analysis_tools/benchmark_mt_adamw.py --write '
            'docs/benchmark.md`. Target: MTAdamW <= 1.3x AdamW.',
            ['optimizer', 'step (ms)', 'ratio'], rows)


if __name__ == '__main__':
    main()
