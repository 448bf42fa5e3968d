# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Where does one training iteration's time go, per task entry?

Builds the config's Runner, model, optimizer and multi-task loop, then for
each entry of ``train_dataloader`` runs ``--warmup`` + ``--iters``
iterations of that entry through the loop's own ``train_step`` and splits
the measured wall time into (exclusive) parts::

    data            next(loader): loading + pipeline + collate
    preprocess      the data preprocessor (normalise, pad)
    backbone        image_encoder.backbone + image_encoder.neck
    proposal net    image_encoder.proposal_network (deformable enc/dec)
    criterion       image_encoder.criterion (Hungarian matching + losses)
    image tokens    the rest of image_encoder (fusion, global tokens)
    text encoder    text_encoder calls of the input side
    targets         target encoding (class names / vocabulary / retrieval
                    texts through the text encoder and decoder,
                    UniPerceiverV2._decode_text_ids)
    decoder         decoder calls of the input side
    head            the rest of the forward (similarity, loss, ...)
    backward        optim_wrapper.backward
    optimizer       optim_wrapper.step + zero_grad (MT-AdamW)

    python tools/analysis_tools/profile_train_step.py CONFIG \
        [--iters 5] [--warmup 2] [--entries a b] [--write docs/benchmark.md]

Timing uses ``time.perf_counter`` around module calls (on a GPU add
``--sync`` to synchronise at every boundary). The last column is the
entry's sampling ratio, so ``sum(ratio x total)`` is the expected time of
an average iteration (printed below the table).
"""
import argparse
import contextlib
import functools
import os.path as osp
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List, Sequence

import torch

PARTS = ('data', 'preprocess', 'backbone', 'proposal net', 'criterion',
         'image tokens', 'text encoder', 'targets', 'decoder', 'head',
         'backward', 'optimizer')
TITLE = 'Training step profile'


class ExclusiveTimer:
    """Nested wall-clock regions; each region's time excludes the regions
    opened inside it (a stack of start times and child totals), except
    inside an *absorbing* region, which keeps all the time spent in it
    (target encoding runs the text encoder and decoder, but is one part).
    """

    def __init__(self, sync: bool = False,
                 absorbing: Sequence[str] = ('targets', )) -> None:
        self.totals: Dict[str, float] = defaultdict(float)
        self._stack: List[list] = []
        self.sync = sync
        self.absorbing = set(absorbing)

    def _now(self) -> float:
        if self.sync and torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextlib.contextmanager
    def region(self, name: str):
        if any(r[0] in self.absorbing for r in self._stack):
            yield  # counted by the enclosing absorbing region
            return
        self._stack.append([name, self._now(), 0.0])
        try:
            yield
        finally:
            name, start, children = self._stack.pop()
            elapsed = self._now() - start
            self.totals[name] += elapsed - children
            if self._stack:
                self._stack[-1][2] += elapsed

    def wrap(self, name: str, fn: Callable) -> Callable:

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.region(name):
                return fn(*args, **kwargs)

        return timed


def instrument(model, optim_wrapper, timer: ExclusiveTimer) -> None:
    """Patch the instance methods whose time is reported (no copy of any
    code path: the loop's ``train_step`` runs unchanged)."""
    enc = model.image_encoder
    for name, module in (('backbone', enc.backbone), ('backbone', enc.neck),
                         ('proposal net', enc.proposal_network),
                         ('criterion', enc.criterion),
                         ('image tokens', enc),
                         ('text encoder', model.text_encoder),
                         ('decoder', model.decoder)):
        module.forward = timer.wrap(name, module.forward)
    model._decode_text_ids = timer.wrap('targets', model._decode_text_ids)
    model.forward = timer.wrap('head', model.forward)
    model.data_preprocessor.forward = timer.wrap(
        'preprocess', model.data_preprocessor.forward)
    optim_wrapper.backward = timer.wrap('backward', optim_wrapper.backward)
    optim_wrapper.step = timer.wrap('optimizer', optim_wrapper.step)
    optim_wrapper.zero_grad = timer.wrap('optimizer', optim_wrapper.zero_grad)


def parse_args() -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=5,
                        help='measured iterations per entry')
    parser.add_argument('--warmup', type=int, default=2,
                        help='unmeasured iterations per entry first')
    parser.add_argument('--entries', nargs='*', help='entries to profile '
                        '(default: all of train_dataloader)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--sync', action='store_true',
                        help='synchronise CUDA at every region boundary')
    parser.add_argument('--work-dir', default='work_dirs/profile')
    add_cfg_options(parser)
    parser.add_argument('--write', metavar='MARKDOWN',
                        help=f'write the "{TITLE}" section of this file')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from mmengine.config import Config

    from mmupv2.engine.runner.launch import build_runner
    from mmupv2.engine.runner.multi_task_loop import MultiTaskBatch
    from mmupv2.utils.benchmark_table import write_section

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10**9)
    runner = build_runner(cfg)
    loop = runner.train_loop  # builds the entries' loaders
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner._init_model_weights()
    runner.call_hook('before_train')
    runner.model.train()
    model = runner.model
    timer = ExclusiveTimer(args.sync)
    instrument(model, runner.optim_wrapper, timer)

    rows, expected = [], 0.0
    entries = [e for e in loop.entries
               if not args.entries or e.name in args.entries]
    for entry in entries:
        iterator = iter(entry.dataloader)
        for it in range(args.warmup + args.iters):
            if it == args.warmup:
                timer.totals.clear()
                start = time.perf_counter()
            with timer.region('data'):
                batch = next(iterator)
            loop.train_step(MultiTaskBatch(it, [entry], [batch]))
        total = (time.perf_counter() - start) / args.iters
        parts = {p: timer.totals.get(p, 0.0) / args.iters for p in PARTS}
        expected += entry.sampling_ratio * total
        rows.append([entry.name, entry.dataloader.batch_size] +
                    [f'{parts[p] * 1e3:.0f}' for p in PARTS] +
                    [f'{total * 1e3:.0f}', f'{entry.sampling_ratio:.2f}'])
        print(f'{entry.name}: {total * 1e3:.0f} ms/iter', flush=True)

    header = ['entry', 'batch'] + [f'{p} (ms)' for p in PARTS] + [
        'total (ms)', 's_k'
    ]
    from mmupv2.utils.benchmark_table import markdown_table
    print(markdown_table(header, rows))
    print(f'expected time of an iteration (sum s_k x total): '
          f'{expected * 1e3:.0f} ms = {60 / expected:.0f} iterations/min')
    if args.write:
        write_section(
            args.write, f'{TITLE}: {osp.basename(args.config)}',
            f'`python tools/analysis_tools/profile_train_step.py '
            f'{osp.relpath(args.config)} --iters {args.iters}`: one training '
            'iteration of each entry through the loop\'s `train_step`, '
            'split into exclusive parts (ms, mean of '
            f'{args.iters} after {args.warmup} warm-up, '
            f'{torch.get_num_threads()} threads). Expected time of an '
            f'average iteration: {expected * 1e3:.0f} ms '
            f'({60 / expected:.0f} iterations/min).', header, rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
