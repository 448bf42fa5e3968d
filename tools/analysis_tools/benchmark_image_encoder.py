# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Time the ResNet-50 image encoder against mmdet's DINO-4scale-R50.

Both models are randomly initialised and run inference (no gradients) on one
random image per size: the encoder built from
``configs/_base_/models/image_encoder_r50.py`` (``forward`` without loss:
backbone, neck, binary Mask-DINO with masks, fusion, global tokens) and
mmdet's DINO built from mmdet's own
``configs/dino/dino-4scale_r50_8xb2-12e_coco.py`` (``predict`` without
rescaling). After warm-up, the two models run in turn for ``--repeats``
rounds; the table gives each model's median latency (wall clock and
process CPU time) and the median of the per-round ratios (encoder / DINO),
which is robust to a machine whose load changes. Peak memory is measured
apart: on CUDA the peak of ``torch.cuda.max_memory_allocated`` over one
forward; on CPU the peak resident memory above the built model during one
forward, in a fresh process per model and size (sampled from
``/proc/self/statm``, Linux).

    python tools/analysis_tools/benchmark_image_encoder.py \
        [--sizes 512x512 800x1216] [--repeats 5] [--threads 2] \
        [--device cpu|cuda] [--bf16] [--write docs/benchmark.md]
"""
import argparse
import multiprocessing
import os
import os.path as osp
import statistics
import threading
import time
from typing import Callable, Dict, List, Tuple

import mmdet
import torch
from mmdet.structures import DetDataSample
from mmengine import Config
from mmengine.registry import DefaultScope

from mmupv2.registry import MODELS
from mmupv2.utils.benchmark_table import write_section

ENCODER = 'RegionProposalImageEncoder (R50)'
DINO = 'mmdet DINO-4scale-R50'
ENCODER_CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', '_base_', 'models',
    'image_encoder_r50.py')
DINO_CONFIG = osp.join(
    osp.dirname(mmdet.__file__), '.mim', 'configs', 'dino',
    'dino-4scale_r50_8xb2-12e_coco.py')

Runner = Callable[[], object]


def build(name: str, device: str) -> torch.nn.Module:
    """Build one of the two models, randomly initialised, in eval mode."""
    if name == ENCODER:
        import mmupv2.models  # noqa: F401  (registers the encoder)
        cfg = Config.fromfile(ENCODER_CONFIG).image_encoder
        cfg.backbone.init_cfg = None
        model = MODELS.build(cfg)
    elif name == DINO:
        from mmdet.registry import MODELS as MMDET_MODELS
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        cfg = Config.fromfile(DINO_CONFIG).model
        cfg.backbone.init_cfg = None
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = MMDET_MODELS.build(cfg)
    else:
        raise ValueError(f'unknown model {name!r}; use {ENCODER!r} or '
                         f'{DINO!r}')
    return model.to(device).eval()


def make_runner(name: str, model: torch.nn.Module, size: Tuple[int, int],
                device: str, bf16: bool) -> Runner:
    """A closure running one inference forward on a random (1, 3, H, W)
    image."""
    h, w = size
    inputs = torch.randn(1, 3, h, w, device=device)
    samples = [
        DetDataSample(metainfo=dict(
            img_shape=(h, w), batch_input_shape=(h, w), ori_shape=(h, w),
            pad_shape=(h, w), scale_factor=(1.0, 1.0)))
    ]

    def run():
        with torch.no_grad(), torch.autocast(
                device_type=device, dtype=torch.bfloat16, enabled=bf16):
            if name == ENCODER:
                return model(inputs, samples, with_loss=False)
            return model.predict(inputs, samples, rescale=False)

    return run


def timed(run: Runner, device: str) -> Tuple[float, float]:
    """Wall-clock and process CPU seconds of one call, the device
    synchronised."""
    if device == 'cuda':
        torch.cuda.synchronize()
    start, start_cpu = time.perf_counter(), time.process_time()
    run()
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - start_cpu


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _cpu_peak_worker(name: str, size: Tuple[int, int], threads: int,
                     queue) -> None:
    """In a fresh process: peak resident memory of one forward above the
    built model."""
    torch.set_num_threads(threads)
    run = make_runner(name, build(name, 'cpu'), size, 'cpu', False)
    baseline, peak, done = _rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run()
    done.set()
    sampler.join()
    queue.put(max(peak[0], _rss_bytes()) - baseline)


def peak_memory_mib(name: str, size: Tuple[int, int], args,
                    model: torch.nn.Module) -> float:
    """Peak memory of one forward (MiB); see the module docstring."""
    if args.device == 'cuda':
        run = make_runner(name, model, size, 'cuda', args.bf16)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    ctx = multiprocessing.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_cpu_peak_worker, args=(name, size, args.threads, queue))
    proc.start()
    peak = queue.get()
    proc.join()
    return peak / 2**20


def benchmark_size(models: Dict[str, torch.nn.Module], size: Tuple[int, int],
                   args) -> Dict[str, Dict[str, float]]:
    """Per model at one size, the models interleaved: median wall-clock
    ``latency`` and process ``cpu_time`` (s), and the medians of their
    per-round ratios to DINO (``ratio``, ``cpu_ratio``)."""
    runners = {
        name: make_runner(name, model, size, args.device, args.bf16)
        for name, model in models.items()
    }
    for _ in range(args.warmup):
        for run in runners.values():
            run()
    wall: Dict[str, List[float]] = {name: [] for name in runners}
    cpu: Dict[str, List[float]] = {name: [] for name in runners}
    for i in range(args.repeats):
        for name, run in runners.items():
            seconds, cpu_seconds = timed(run, args.device)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
        print(f'  {size[0]}x{size[1]} round {i + 1}/{args.repeats}: ' +
              ', '.join(f'{n} {t[-1] * 1e3:.0f} ms'
                        for n, t in wall.items()), flush=True)
    return {
        name: dict(
            latency=statistics.median(wall[name]),
            cpu_time=statistics.median(cpu[name]),
            ratio=statistics.median(
                a / b for a, b in zip(wall[name], wall[DINO])),
            cpu_ratio=statistics.median(
                a / b for a, b in zip(cpu[name], cpu[DINO])))
        for name in runners
    }


def parse_size(text: str) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f'size must be HxW, e.g. 800x1216, got {text!r}') from e
    return h, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=parse_size, nargs='+',
                        default=[(512, 512), (800, 1216)],
                        help='input sizes HxW')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed rounds (at least 5)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2,
                        help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--bf16', action='store_true',
                        help='autocast to bfloat16')
    parser.add_argument('--skip-memory', action='store_true')
    parser.add_argument('--write', default=None,
                        help='markdown file to update (docs/benchmark.md)')
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f'--repeats must be at least 5, got {args.repeats}')
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {name: build(name, args.device) for name in (ENCODER, DINO)}

    rows, ratios = [], []
    for size in args.sizes:
        results = benchmark_size(models, size, args)
        for name, res in results.items():
            memory = 'n/a' if args.skip_memory else \
                f'{peak_memory_mib(name, size, args, models[name]):.0f}'
            rows.append([
                name, f'{size[0]}x{size[1]}', f'{res["latency"] * 1e3:.0f}',
                f'{1 / res["latency"]:.2f}', f'{res["cpu_time"] * 1e3:.0f}',
                memory, f'{res["ratio"]:.2f}x', f'{res["cpu_ratio"]:.2f}x'
            ])
            print(' | '.join(rows[-1]), flush=True)
        ratios.append(f'{size[0]}x{size[1]} '
                      f'{results[ENCODER]["ratio"]:.2f}x')
    print(f'encoder / DINO latency: {", ".join(ratios)} (target <= 1.3x)')
    if args.write:
        device = (torch.cuda.get_device_name() if args.device == 'cuda' else
                  f'CPU, {torch.get_num_threads()} threads')
        write_section(
            args.write, 'Image encoder latency',
            f'Inference of one random image, batch 1, {device}'
            f'{", bf16 autocast" if args.bf16 else ", fp32"}, random '
            f'weights; median of {args.repeats} rounds after '
            f'{args.warmup} warm-up round(s), the two models in turn; ratio '
            '= median per-round encoder / DINO latency (wall clock, and '
            'process CPU time). The encoder '
            '(`configs/_base_/models/image_encoder_r50.py`, 300 queries, '
            'masks at stride 4, fusion, global tokens) against mmdet\'s '
            'DINO-4scale-R50 (its own config, 900 queries, boxes only). '
            'Peak memory: see the script\'s docstring. Command: `python '
            'tools/analysis_tools/benchmark_image_encoder.py --write '
            'docs/benchmark.md`. Target: encoder <= 1.3x DINO.',
            ['model', 'input (HxW)', 'latency (ms)', 'images/s',
             'CPU time (ms)', 'peak memory (MiB)', 'ratio to DINO',
             'ratio (CPU time)'], rows)


if __name__ == '__main__':
    main()
