# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The GPU figures: image-encoder throughput against mmdet's DINO, one
training iteration per task of the R50 paper config with its model FLOPs
utilisation, and the demo config's training speed.

    python tools/analysis_tools/benchmark_gpu.py [--device cuda]
        [--sections encoder train demo] [--minilm DIR] [--json OUT.json]
        [--write docs/benchmark.md] [--peak-tflops T] [--time-limit S]
        [--smoke]

Sections (all randomly initialised; everything under bf16 autocast on a
GPU unless it says fp32):

``encoder``
    The R50 paper config's image encoder
    (``configs/_base_/models/image_encoder_r50.py``: backbone, neck, binary
    Mask-DINO with masks, fusion, global tokens) against mmdet's
    DINO-4scale-R50 (mmdet's own config), inference on random 800x1216
    images at batch 1 and 8, in turn (the models of
    ``benchmark_image_encoder.py``); images/s = batch / median latency.
``train``
    One training iteration (forward, backward, MT-AdamW step through the
    multi-task loop's own ``train_step``, mmengine's ``AmpOptimWrapper`` with
    bf16) of ``configs/uniperceiver_v2/upv2_r50_16xb-mt-150k_4tasks.py`` for
    each of its tasks, at the per-GPU batch of its first entry of that task
    (Table 8: ImageNet 28, COCO 1, captioning 24, retrieval 28) on random
    images (224x224; detection ``--det-size``, default 1024x1344, the mean of
    the config's 200-1800 scale jitter). The text encoder is RoBERTa-base's
    architecture (random weights) with a synthetic byte-level BPE tokenizer
    of RoBERTa's 50,265 tokens, so the full-vocabulary captioning targets
    cost what they cost with ``roberta-base``. **MFU** = FLOPs of the step /
    median step time / the GPU's dense bf16 peak (``PEAK_BF16_TFLOPS`` of
    ``mmupv2/utils/benchmark_table.py``,
    by device name; ``--peak-tflops`` overrides). FLOPs are counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on one extra step:
    2 per multiply-add of every matrix product, convolution and attention,
    forward and backward, as executed (the recomputation of checkpointed
    target encodings included); mmcv's deformable-attention CUDA kernel is
    not an aten operator and is not counted.
``demo``
    ``configs/uniperceiver_v2/upv2_lite0-minilm_shapes.py`` through
    mmengine's Runner (its data loaders, unmixed sampling, hooks) on a
    freshly generated shapes set, training iterations per second in fp32
    and with bf16 AMP. The MiniLM text encoder is built from its config
    (``--minilm``: a folder with config.json and the tokenizer, e.g. the
    bundle's ``minilm/``) with random weights, the Lite0 backbone without
    its ImageNet weights: the speed is the demo's, the accuracy is not.

mmcv 2.1.0's deformable-attention CUDA kernel has no bf16 version; under
bf16 autocast the script runs it in fp32 (inputs cast up, output cast
back, as detrex does) for both models and says so in the results.

``--smoke`` runs every section on the CPU at tiny sizes (the encoders at
256x320, training at 128x128, a 1-layer text encoder and decoder, batch 1,
a few iterations): it proves the script works on a machine without a GPU
and writes no ``--write`` section. Results go to ``--json`` after every
section (partial results survive a time-out); ``--write`` adds the "GPU"
section to a markdown file only when run on a GPU.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_image_encoder import (  # noqa: E402
    DINO,
    ENCODER,
    build,
    parse_size,
)

from mmupv2.engine.runner.task_schedule import (  # noqa: E402
    first_entry_per_task,
)
from mmupv2.testing.synthetic import (  # noqa: E402
    ROBERTA_VOCAB,
    roberta_base_text_encoder,
    synthetic_batch,
    synthetic_bpe_tokenizer,
)
from mmupv2.utils.benchmark_table import peak_tflops  # noqa: E402
from mmupv2.utils.logger_level import current_logger_level  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R50_CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                      'upv2_r50_16xb-mt-150k_4tasks.py')
DEMO_CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                       'upv2_lite0-minilm_shapes.py')
TITLE = 'GPU'


def log(msg: str) -> None:
    print(f'[benchmark_gpu] {msg}', flush=True)


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], device: str, warmup: int,
                   repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def autocast(device: str, bf16: bool):
    return torch.autocast(device_type=device, dtype=torch.bfloat16,
                          enabled=bf16)


# ------------------------------------------------ deformable attention bf16
@contextlib.contextmanager
def fp32_deform_attn_kernel(active: bool):
    """Within the block mmcv's ``MultiScaleDeformableAttnFunction`` (the CUDA
    kernel; mmcv 2.1.0 has no bf16 version) runs in fp32 and returns the
    dtype of its ``value``: for mmdet's DINO and for mmupv2's layer."""
    if not active:
        yield
        return
    import mmcv.ops.multi_scale_deform_attn as mmcv_msda

    import mmupv2.models.layers.ms_deform_attn as ours
    original = mmcv_msda.MultiScaleDeformableAttnFunction

    class FP32Function:

        @staticmethod
        def apply(value, shapes, starts, locations, weights, step):
            with torch.autocast('cuda', enabled=False):
                out = original.apply(value.float(), shapes, starts,
                                     locations.float(), weights.float(),
                                     step)
            return out.to(value.dtype)

    mmcv_msda.MultiScaleDeformableAttnFunction = FP32Function
    ours.MultiScaleDeformableAttnFunction = FP32Function
    try:
        yield
    finally:
        mmcv_msda.MultiScaleDeformableAttnFunction = original
        ours.MultiScaleDeformableAttnFunction = original


def deform_attn_kernel(device: str) -> Tuple[str, bool]:
    """(what runs deformable attention, whether it needs the fp32 wrap)."""
    if device != 'cuda':
        return 'PyTorch path (CPU)', False
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction,
    )

    from mmupv2.models.layers import mmcv_cuda_kernel_compiled
    if not mmcv_cuda_kernel_compiled():
        return ('PyTorch path (mmcv built without CUDA; mmdet DINO also '
                'on the PyTorch path)'), False
    value = torch.rand(1, 4, 1, 2, device='cuda', dtype=torch.bfloat16)
    shapes = torch.tensor([[2, 2]], device='cuda')
    starts = torch.tensor([0], device='cuda')
    loc = torch.rand(1, 1, 1, 1, 1, 2, device='cuda', dtype=torch.bfloat16)
    weights = torch.ones(1, 1, 1, 1, 1, device='cuda', dtype=torch.bfloat16)
    try:
        MultiScaleDeformableAttnFunction.apply(value, shapes, starts, loc,
                                               weights, 64)
    except RuntimeError:
        return 'mmcv CUDA kernel, in fp32 inside bf16 autocast', True
    return 'mmcv CUDA kernel (bf16)', False


@contextlib.contextmanager
def pytorch_path_for_mmdet(active: bool):
    """mmcv's own module calls the CUDA kernel for any CUDA tensor; with an
    mmcv built without CUDA, send mmdet's DINO to the PyTorch path."""
    if not active:
        yield
        return
    import mmcv.ops.multi_scale_deform_attn as mmcv_msda
    before = mmcv_msda.IS_CUDA_AVAILABLE
    mmcv_msda.IS_CUDA_AVAILABLE = False
    try:
        yield
    finally:
        mmcv_msda.IS_CUDA_AVAILABLE = before


# ------------------------------------------------------------ encoder
def encoder_runner(name: str, model: torch.nn.Module, inputs: torch.Tensor,
                   samples: list, device: str,
                   bf16: bool) -> Callable[[], object]:
    """One inference forward of a batch (the encoder without loss, DINO's
    ``predict`` without rescaling)."""

    def run():
        with torch.no_grad(), autocast(device, bf16):
            if name == ENCODER:
                return model(inputs, samples, with_loss=False)
            return model.predict(inputs, samples, rescale=False)

    return run


def encoder_section(args, device: str) -> List[dict]:
    """Images/s of the encoder and DINO at each batch size, in turn."""
    from mmdet.structures import DetDataSample
    h, w = args.encoder_size
    torch.manual_seed(0)
    models = {name: build(name, device) for name in (ENCODER, DINO)}
    rows = []
    for batch in args.encoder_batches:
        inputs = torch.randn(batch, 3, h, w, device=device)
        samples = [
            DetDataSample(metainfo=dict(
                img_shape=(h, w), batch_input_shape=(h, w),
                ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1., 1.)))
            for _ in range(batch)
        ]

        runs = {
            name: encoder_runner(name, model, inputs, samples, device,
                                 args.bf16)
            for name, model in models.items()
        }
        for run in runs.values():  # warm-up, in turn
            for _ in range(args.warmup):
                run()
        times: Dict[str, List[float]] = {n: [] for n in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append(median_seconds(run, device, 0, 1))
        for name in runs:
            latency = statistics.median(times[name])
            ratio = statistics.median(
                d / e for e, d in zip(times[name], times[DINO]))
            memory = None
            if device == 'cuda':
                torch.cuda.reset_peak_memory_stats()
                runs[name]()
                memory = torch.cuda.max_memory_allocated() / 2**30
            rows.append(dict(model=name, input=f'{h}x{w}', batch=batch,
                             latency_ms=latency * 1e3,
                             images_per_s=batch / latency,
                             speed_vs_dino=ratio, peak_memory_gib=memory))
            log(f'encoder: {name} batch {batch}: {latency * 1e3:.1f} ms, '
                f'{batch / latency:.1f} images/s')
    return rows


# ------------------------------------------------------------ train
def r50_model_cfg(args, tokenizer: str):
    """The R50 paper config's model with the benchmark's text encoder (and,
    for --smoke, tiny widths and 5 classes)."""
    from mmengine.config import Config, ConfigDict
    cfg = Config.fromfile(R50_CONFIG)
    model = cfg.model
    model.image_encoder.backbone.init_cfg = None
    text = {}
    if args.smoke:
        text.update(hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=64)
        model.decoder.update(embed_dims=32, num_layers=1, num_heads=2,
                             feedforward_channels=64)
        for task in model.tasks.values():
            if task.get('classes'):
                task.classes = task.classes[:5]
    model.text_encoder = ConfigDict(
        roberta_base_text_encoder(
            tokenizer, model.text_encoder.get('max_length', 128), **text))
    return cfg


def bare_loop(model: torch.nn.Module, optim_wrapper):
    """A ``MultiTaskLoop`` without a Runner or data loaders, for its own
    ``train_step`` (which reads ``runner.model``, ``runner.optim_wrapper``
    and ``sampling`` only)."""
    from mmupv2.engine.runner.multi_task_loop import MultiTaskLoop
    loop = MultiTaskLoop.__new__(MultiTaskLoop)
    loop._runner = SimpleNamespace(model=model, optim_wrapper=optim_wrapper)
    loop.sampling = 'unmixed'
    return loop


def loop_step(loop, entry, data: dict) -> Callable[[], dict]:
    """One iteration of ``entry`` on ``data`` through the loop's
    ``train_step``."""
    from mmupv2.engine.runner.multi_task_loop import MultiTaskBatch
    iteration = iter(range(10**9))

    def step():
        return loop.train_step(
            MultiTaskBatch(next(iteration), [entry], [data]))

    return step


def train_section(args, device: str, tmp: str,
                  peak: Optional[float]) -> List[dict]:
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from torch.utils.flop_counter import FlopCounterMode

    from mmupv2.engine.runner.multi_task_loop import TaskEntry
    from mmupv2.registry import MODELS
    init_default_scope('mmupv2')
    tokenizer = synthetic_bpe_tokenizer(
        osp.join(tmp, 'bpe'), 600 if args.smoke else ROBERTA_VOCAB)
    cfg = r50_model_cfg(args, tokenizer)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
    wrapper_cfg = dict(cfg.optim_wrapper)
    if device == 'cuda':
        wrapper_cfg.update(type='AmpOptimWrapper', dtype='bfloat16')
    with current_logger_level('WARNING'):  # a log line per parameter
        optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    loop = bare_loop(model, optim_wrapper)
    params = sum(p.numel() for p in model.parameters())
    rows = []
    for spec in first_entry_per_task(cfg.train_dataloader):
        if args.time_left() < 20:
            log(f'train: out of time before {spec["task"]}')
            break
        task = spec['task']
        batch = 1 if args.smoke else spec['batch_size']
        size = args.det_size if task in ('detection',
                                         'instance_segmentation') else (
                                             args.image_size,
                                             args.image_size)
        num_classes = len(getattr(model.tasks[task], 'classes', None) or
                          [0])
        data = synthetic_batch(task, batch, size, num_classes, seed=0)
        entry = TaskEntry(spec['name'], task, spec['sampling_ratio'],
                          spec['loss_weight'], None)
        step = loop_step(loop, entry, data)

        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        seconds = median_seconds(step, device, args.warmup,
                                 args.train_repeats)
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        achieved = flops / seconds / 1e12
        row = dict(task=task, entry=spec['name'], batch=batch,
                   input=f'{size[0]}x{size[1]}', step_ms=seconds * 1e3,
                   samples_per_s=batch / seconds, tflop_per_step=flops / 1e12,
                   achieved_tflops=achieved,
                   mfu=None if not peak else achieved / peak,
                   peak_memory_gib=(torch.cuda.max_memory_allocated() / 2**30
                                    if device == 'cuda' else None))
        rows.append(row)
        log(f'train: {task} batch {batch} {row["input"]}: '
            f'{seconds * 1e3:.0f} ms/step, {flops / 1e12:.2f} TFLOP, '
            f'{achieved:.1f} TFLOP/s' +
            (f', MFU {achieved / peak:.1%}' if peak else ''))
    log(f'train: model of {params / 1e6:.1f} M parameters')
    del model, optim_wrapper
    if device == 'cuda':
        torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------ demo
def demo_section(args, device: str, tmp: str) -> List[dict]:
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from mmupv2.datasets.shapes import generate_shapes
    from mmupv2.engine.runner.launch import build_runner
    if not args.minilm or not osp.isfile(osp.join(args.minilm,
                                                  'config.json')):
        raise FileNotFoundError(
            f'--minilm {args.minilm!r}: a folder with config.json and the '
            "tokenizer of all-MiniLM-L6-v2 (the bundle's minilm/)")
    data = osp.join(tmp, 'shapes')
    num_train, num_val, img = (8, 2, 96) if args.smoke else (256, 8, 160)
    generate_shapes(data, num_train=num_train, num_val=num_val, seed=0,
                    img_size=img)

    class IterTimer(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.stamps: List[float] = []

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            sync(device)
            self.stamps.append(time.perf_counter())

    rows = []
    modes = [('fp32', False)] + ([('bf16 AMP', True)]
                                 if device == 'cuda' else [])
    iters = args.demo_iters
    for label, amp in modes:
        if args.time_left() < 30:
            log(f'demo: out of time before {label}')
            break
        cfg = Config.fromfile(DEMO_CONFIG)
        cfg.work_dir = osp.join(tmp, f'demo_{label.split()[0]}')
        cfg.model.text_encoder.update(name_or_path=args.minilm,
                                      load_pretrained=False)
        cfg.model.image_encoder.backbone.pretrained = None
        for entry in cfg.train_dataloader.values():
            entry.dataloader.dataset.data_root = data + '/'
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
        cfg.train_cfg.max_iters = args.warmup + iters
        cfg.train_cfg.val_interval = 10**9
        cfg.param_scheduler = None
        cfg.default_hooks.checkpoint = None
        cfg.default_hooks.logger.interval = 10**6
        cfg.log_level = 'ERROR'  # not a line per frozen parameter
        if amp:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.dtype = 'bfloat16'
        runner = build_runner(cfg)
        timer = IterTimer()
        runner.register_hook(timer, 'LOWEST')
        runner.train()
        stamps = timer.stamps[args.warmup - 1 if args.warmup else 0:]
        seconds = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
        rows.append(dict(mode=label, iterations=len(stamps) - 1,
                         iter_ms=seconds * 1e3, iters_per_s=1 / seconds))
        log(f'demo: {label}: {1 / seconds:.2f} iterations/s')
        del runner
    return rows


# ------------------------------------------------------------ report
def markdown(results: dict) -> Tuple[str, List[str], List[list]]:
    """(description with the encoder and training tables, the demo table's
    header and rows) of the "GPU" section."""
    from mmupv2.utils.benchmark_table import markdown_table

    def fmt(value, spec):
        return 'n/a' if value is None else format(value, spec)

    enc = results['sections'].get('encoder', [])
    train = results['sections'].get('train', [])
    demo = results['sections'].get('demo', [])
    peak = results.get('peak_bf16_tflops')
    text = [
        f'`python tools/analysis_tools/benchmark_gpu.py --device cuda` '
        f'(via `tools/misc/device_run.sh`, docs/gpu.md) on '
        f'{results["device_name"]}, {results["autocast"]}, random weights. '
        f'Deformable attention: {results["deform_attn"]}. Peak used for '
        f'MFU: {fmt(peak, ".1f")} TFLOP/s (dense bf16).', '',
        '**Image encoder vs mmdet DINO-4scale-R50** (inference, '
        f'{results["encoder_size"]}; median of the rounds, models in turn; '
        'speed vs DINO = encoder images/s / DINO images/s):', '',
        markdown_table(
            ['model', 'input', 'batch', 'latency (ms)', 'images/s',
             'speed vs DINO', 'peak memory (GiB)'],
            [[r['model'], r['input'], r['batch'],
              fmt(r['latency_ms'], '.1f'), fmt(r['images_per_s'], '.1f'),
              fmt(r['speed_vs_dino'], '.2f') + 'x',
              fmt(r['peak_memory_gib'], '.2f')] for r in enc]), '',
        '**One training iteration per task, R50 paper config** '
        '(`upv2_r50_16xb-mt-150k_4tasks.py`, per-GPU batch of Table 8, '
        'AmpOptimWrapper bf16 + MT-AdamW; RoBERTa-base architecture with a '
        'synthetic 50,265-token BPE; FLOPs by FlopCounterMode, forward + '
        'backward as executed; MFU = FLOPs / step time / peak):', '',
        markdown_table(
            ['task', 'batch', 'input', 'step (ms)', 'samples/s',
             'TFLOP/step', 'TFLOP/s', 'MFU', 'peak memory (GiB)'],
            [[r['task'], r['batch'], r['input'], fmt(r['step_ms'], '.0f'),
              fmt(r['samples_per_s'], '.1f'),
              fmt(r['tflop_per_step'], '.2f'),
              fmt(r['achieved_tflops'], '.1f'),
              'n/a' if r['mfu'] is None else f'{r["mfu"]:.1%}',
              fmt(r['peak_memory_gib'], '.1f')] for r in train]), '',
        '**Demo config training speed** (`upv2_lite0-minilm_shapes.py` '
        'through the Runner on generated shapes data; MiniLM and Lite0 with '
        'random weights):'
    ]
    header = ['mode', 'iterations timed', 'ms / iteration', 'iterations/s']
    rows = [[r['mode'], r['iterations'], fmt(r['iter_ms'], '.1f'),
             fmt(r['iters_per_s'], '.2f')] for r in demo]
    return '\n'.join(text), header, rows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default=None,
                        help='default: cuda if available (cpu with --smoke)')
    parser.add_argument('--sections', nargs='+',
                        choices=('encoder', 'train', 'demo'),
                        default=['encoder', 'train', 'demo'])
    parser.add_argument('--smoke', action='store_true',
                        help='tiny sizes on the CPU: proves the script runs')
    parser.add_argument('--minilm', default=None,
                        help='MiniLM folder (config.json + tokenizer) for '
                        'the demo section')
    parser.add_argument('--encoder-size', type=parse_size,
                        default=(800, 1216))
    parser.add_argument('--encoder-batches', type=int, nargs='+',
                        default=[1, 8])
    parser.add_argument('--image-size', type=int, default=224)
    parser.add_argument('--det-size', type=parse_size, default=(1024, 1344))
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed rounds of the encoder section')
    parser.add_argument('--train-repeats', type=int, default=5)
    parser.add_argument('--demo-iters', type=int, default=30)
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='dense bf16 peak of the GPU (overrides the '
                        'table)')
    parser.add_argument('--time-limit', type=float, default=0,
                        help='seconds; sections that would start later '
                        'are skipped (0: none)')
    parser.add_argument('--json', default=None, help='results file')
    parser.add_argument('--write', default=None,
                        help='markdown file for the "GPU" section (GPU '
                        'runs only)')
    args = parser.parse_args(argv)
    if args.smoke:
        if args.device == 'cuda':
            parser.error('--smoke runs on the CPU')
        args.device = 'cpu'
        # the smallest inputs with enough tokens for 300 (encoder) and 900
        # (DINO) queries
        args.encoder_size, args.encoder_batches = (256, 320), [1]
        args.image_size, args.det_size = 128, (128, 160)
        args.warmup, args.repeats = 0, 1
        args.train_repeats, args.demo_iters = 1, 2
    elif args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no GPU here (use --smoke for a CPU '
                     'rehearsal)')
    if args.write and args.device != 'cuda':
        log(f'--write {args.write}: ignored, no GPU figures on the CPU')
        args.write = None
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    args.time_left = (lambda: float('inf')) if not args.time_limit else (
        lambda: args.time_limit - (time.monotonic() - start))
    device = args.device
    from mmupv2.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    args.bf16 = device == 'cuda'
    name = (torch.cuda.get_device_name(0) if device == 'cuda' else
            f'CPU ({platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} threads)')
    peak = peak_tflops(name, args.peak_tflops) if (
        device == 'cuda' or args.peak_tflops) else None
    kernel, wrap = deform_attn_kernel(device)
    from mmupv2.models.layers import mmcv_cuda_kernel_compiled
    no_kernel = device == 'cuda' and not mmcv_cuda_kernel_compiled()
    results = dict(
        device_name=name, torch=torch.__version__, smoke=args.smoke,
        autocast='bf16 autocast' if args.bf16 else 'fp32',
        deform_attn=kernel, peak_bf16_tflops=peak,
        encoder_size='x'.join(map(str, args.encoder_size)), sections={},
        skipped={}, seconds={})

    def save():
        if args.json:
            os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
            with open(args.json, 'w') as f:
                json.dump(results, f, indent=1)

    log(f'{name}; deformable attention: {kernel}; peak '
        f'{peak or "unknown"} TFLOP/s')
    failed = False
    with tempfile.TemporaryDirectory() as tmp, fp32_deform_attn_kernel(
            wrap), pytorch_path_for_mmdet(no_kernel):
        for section in args.sections:
            if args.time_left() < 30:
                results['skipped'][section] = 'out of time'
                log(f'{section}: skipped, out of time')
                continue
            t0 = time.monotonic()
            try:
                if section == 'encoder':
                    rows = encoder_section(args, device)
                elif section == 'train':
                    rows = train_section(args, device, tmp, peak)
                else:
                    rows = demo_section(args, device, tmp)
            except Exception as e:  # noqa: BLE001 (report, go on)
                import traceback
                traceback.print_exc()
                results['skipped'][section] = f'{type(e).__name__}: {e}'
                failed = True
                rows = []
            results['sections'][section] = rows
            results['seconds'][section] = round(time.monotonic() - t0, 1)
            save()
    if args.write and any(results['sections'].values()):
        from mmupv2.utils.benchmark_table import write_section
        description, header, rows = markdown(results)
        write_section(args.write, TITLE, description, header, rows)
        log(f'wrote the "{TITLE}" section of {args.write}')
    save()
    log('done' + (' (a section failed: see above)' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
