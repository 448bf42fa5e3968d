# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Time MTAdamW.step() against torch.optim.AdamW(foreach=True).

Both optimizers update the same ~100 M-parameter model (a stack of linear
layers of BERT-base widths) with the same fixed gradients, stepping in turn;
the median of the per-round time ratios is the figure of merit (target
<= 1.3x).

    python tools/analysis_tools/benchmark_mt_adamw.py [--params-m 100] \
        [--repeats 7] [--write docs/benchmark.md]
"""
import argparse

import torch
import torch.nn as nn

from mmupv2.engine.optimizers import MTAdamW
from mmupv2.utils.benchmark_table import (
    parse_benchmark_args,
    time_in_turn,
    write_section,
)


def build_model(params_m: float) -> nn.Module:
    """Linear 768->3072->768 blocks until ~``params_m`` million params."""
    per_block = 2 * 768 * 3072 + 3072 + 768
    blocks = max(1, round(params_m * 1e6 / per_block))
    layers = []
    for _ in range(blocks):
        layers += [nn.Linear(768, 3072), nn.Linear(3072, 768)]
    return nn.Sequential(*layers)


def time_steps(optimizers: dict, params, grads, repeats: int,
               warmup: int = 2) -> dict:
    """Median step time of each optimizer and the median of the per-round
    ratios to the first one, all stepping in turn on the fixed ``grads``
    (MTAdamW as a task sampled with s_k = 0.3)."""
    for p, g in zip(params, grads):
        p.grad = g
    for opt in optimizers.values():
        if isinstance(opt, MTAdamW):
            opt.set_task(sampling_ratio=0.3, scale=1.0)  # kept until reset
    return time_in_turn({name: opt.step
                         for name, opt in optimizers.items()}, repeats,
                        warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--params-m', type=float, default=100)
    args = parse_benchmark_args(parser, repeats=7)
    torch.manual_seed(0)
    model = build_model(args.params_m)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    grads = [torch.randn_like(p) for p in params]
    results = time_steps(
        {
            'torch.optim.AdamW(foreach=True)':
            torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4,
                              foreach=True),
            'MTAdamW': MTAdamW(params, lr=1e-4, weight_decay=1e-4),
        }, params, grads, args.repeats)
    for name, (t, ratio) in results.items():
        print(f'{name:35s} median step {t * 1e3:8.1f} ms  ratio {ratio:.2f}x')
    ratio = results['MTAdamW'][1]
    print(f'ratio MTAdamW / AdamW: {ratio:.2f}x (target <= 1.3x)')
    if args.write:
        rows = [[name, f'{t * 1e3:.1f}', f'{r:.2f}x']
                for name, (t, r) in results.items()]
        write_section(
            args.write, 'MTAdamW step time',
            f'{n_params / 1e6:.1f} M parameters, CPU, '
            f'{torch.get_num_threads()} threads; the two optimizers step in '
            f'turn for {args.repeats} rounds after 2 warm-up rounds; median '
            'step time and median per-round ratio. Command: `python '
            'tools/analysis_tools/benchmark_mt_adamw.py --write '
            'docs/benchmark.md`. Target: MTAdamW <= 1.3x AdamW.',
            ['optimizer', 'step (ms)', 'ratio'], rows)


if __name__ == '__main__':
    main()
