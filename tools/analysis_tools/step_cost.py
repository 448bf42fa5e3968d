# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What one training step of each task of a config costs, at the config's
per-GPU batch (Table 8) and input sizes: FLOPs by part, forward and
backward, peak memory, the predicted step time on an A100 / H100, and the
share of the target encoding with it sharded over 16 / 32 / 64 GPUs::

    python tools/analysis_tools/step_cost.py CONFIG [--gpus N ...]
        [--mfu 0.4] [--measure-batch 2] [--measure-size 512]
        [--json OUT.json] [--write docs/benchmark.md] [--cfg-options ...]

For each task (the first ``train_dataloader`` entry of each) it runs real
training steps -- forward and backward of ``model(..., mode='loss')`` on a
synthetic batch of the task, random weights -- under a
:class:`~mmupv2.utils.phase_counter.PhaseCounter`, which attributes every
FLOP to a part (image encoder, input text, target encoding, decoder, loss)
and direction, and tracks the bytes of the tensors alive at once.

**The paper's sizes are reached by measurement, or by a fit of
measurements.** A step at Table 8's sizes is measured directly when it is
small (no larger than ``--measure-batch`` samples, ``--measure-size``
pixels and the measured number of targets); otherwise the step is measured
at two batch sizes (detection / segmentation: two crop sizes) and two
numbers of targets, and every part's FLOPs and the peak memory are
extrapolated with the bilinear fit of those four points in (samples or
pixels, targets): exact for FLOPs (the image encoder, the input text and
the decoder grow with the samples, the target encoding with the targets,
the loss's similarities with both). Memory is modelled as the sum of a
fixed part, a part per sample (pixel) and a part per target, fitted to
the four peaks (least squares, no negative slope), plus the similarity
matrix of every position with every gathered target, which the small
steps cannot show (three fp32 copies; its size follows from the loss's
FLOPs). ``--check-batch B`` also measures a step of B samples and reports
the model's error on it (the measured peak is not used by the fit). The
class-name subsets always hold the longest name, so each is padded as the whole
set is. The table says which rows are measured and which extrapolated.

**What is counted.** FLOPs: 2 per multiply-add of every matrix product,
convolution and attention (torch's ``FlopCounterMode`` formulas, as
``benchmark_gpu.py``); element-wise operators and mmcv's
deformable-attention sampling count 0. The measured steps encode targets
without gradient checkpointing; a config with ``checkpoint_targets``
adds one more forward of the targets to their backward (the
recomputation) and keeps one chunk's activations (``target_chunk_size``
targets) instead of all. Memory: activations, temporaries and gradients
(fp32, as measured on the CPU; bf16 autocast on a GPU keeps less) plus the
fp32 parameters and AdamW's two moments (12 bytes per parameter).

**Predicted step time** = step FLOPs / (the GPU's dense bf16 peak x
``--mfu``): a model, to be checked against ``benchmark_gpu.py``'s measured
steps on a GPU. **Target share** = the target encoding's FLOPs over the
step's, replicated (every GPU encodes every target) and sharded over N
GPUs (``shard_targets``: each encodes 1/N).

The text encoder ``roberta-base`` cannot be fetched here: its architecture
is built with random weights over a synthetic byte-level BPE of exactly
RoBERTa's 50,265 tokens (``mmupv2.testing.synthetic``), so the vocabulary
targets cost what they cost with RoBERTa.
"""
import argparse
import contextlib
import copy
import gc
import json
import math
import os.path as osp
import re
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from transformers.utils import logging as transformers_logging

from mmupv2.engine.runner.task_schedule import first_entry_per_task
from mmupv2.registry import MODELS
from mmupv2.testing.synthetic import (
    ROBERTA_VOCAB,
    roberta_base_text_encoder,
    synthetic_batch,
    synthetic_bpe_tokenizer,
)
from mmupv2.utils import register_all_modules
from mmupv2.utils.benchmark_table import (
    PEAK_BF16_TFLOPS,
    markdown_table,
    write_section,
)
from mmupv2.utils.logger_level import current_logger_level
from mmupv2.utils.phase_counter import DEFAULT_PHASE, PhaseCounter

#: the parts of a step, in the order of the tables
PARTS = ('image encoder', 'input text', 'targets', 'decoder', 'loss')
#: the GPUs of the predicted step times (dense bf16 peaks of
#: ``PEAK_BF16_TFLOPS``, SXM)
DEVICES = ('A100', 'H100')
#: GPU memory the fit check is against
GPU_MEMORY_GB = 80
#: GPU counts of the target share
SHARD_GPUS = (16, 32, 64)
#: targets of the two measured steps, at most (class names, vocabulary)
MEASURED_TARGETS = dict(classes=(16, 32), vocabulary=(64, 128))
#: words of a synthetic caption / retrieval text (COCO's ~10.5)
CAPTION_WORDS = 12
LOCALIZATION = ('detection', 'instance_segmentation')


def log(msg: str) -> None:
    print(f'[step_cost] {msg}', file=sys.stderr, flush=True)


# ------------------------------------------------------------- the model
def offline_model_cfg(cfg: Config, tmp: str) -> Tuple[ConfigDict, List[str]]:
    """The config's model, buildable without a hub or checkpoints: no
    pretrained weights; ``roberta-base`` as its architecture over a
    synthetic 50,265-token BPE. Returns the model config and notes."""
    model = copy.deepcopy(cfg.model)
    notes = []
    text = model.text_encoder
    name = text.get('name_or_path')
    if text.get('hf_config') is None and name == 'roberta-base':
        tokenizer = synthetic_bpe_tokenizer(osp.join(tmp, 'bpe'),
                                            ROBERTA_VOCAB)
        model.text_encoder = ConfigDict(
            roberta_base_text_encoder(tokenizer,
                                      text.get('max_length', 128)))
        notes.append('roberta-base: its architecture with random weights '
                     'over a synthetic BPE of 50,265 tokens')
    else:
        text.load_pretrained = False
    image = model.image_encoder
    if 'pretrained' in image:
        image.pretrained = None
    if isinstance(image.get('backbone'), dict):
        image.backbone.init_cfg = None
    # measured steps: every target's activations visible (see the module
    # docstring), vocabulary subsets of a chosen size
    model.checkpoint_targets = False
    model.vocabulary = 'data'
    return model, notes


@contextlib.contextmanager
def model_phases(model: torch.nn.Module,
                 counter: PhaseCounter) -> Iterator[None]:
    """Within the block the model's steps count under their part: the
    image encoder, the input text (text encoder, caption embeddings),
    the target encoding (text encoder + decoder of a target set), the
    decoder; the rest (similarities, losses) under 'loss'."""
    keep = ('targets', )

    def wrap(name: str, phase: Optional[str]):
        method = getattr(model, name)

        def wrapped(*args, **kwargs):
            part = phase
            if name == '_decode_text_ids':  # a target set, or batch texts
                part = 'targets' if kwargs.get('sharded', True) else None
            if part is None:
                return method(*args, **kwargs)
            with counter.phase(part, keep_outer=keep):
                return method(*args, **kwargs)

        setattr(model, name, wrapped)

    names = dict(encode_image='image encoder', encode_text='input text',
                 embed_text='input text', decode='decoder',
                 _decode_text_ids=None)
    for name, phase in names.items():
        wrap(name, phase)
    try:
        yield
    finally:
        for name in names:
            delattr(model, name)


# ----------------------------------------------------------- the entries
def paper_input(entry: dict, model) -> Tuple[int, int]:
    """(H, W) of the entry's training images: its pipeline's crop
    (``RandomCrop``'s ``crop_size``, ``RandomResizedCrop``'s ``scale``),
    fixed resize or size limit (``LimitImageSize``, the shapes data); (0, 0)
    for text-only entries."""
    if entry['task'] == 'mlm':
        return (0, 0)
    pipeline = entry['dataloader']['dataset'].get('pipeline') or []
    for kind in ('crop_size', 'RandomResizedCrop', 'Resize', 'max_size'):
        for transform in pipeline:
            name = str(transform.get('type', ''))
            if kind in ('crop_size', 'max_size') and kind in transform:
                size = transform[kind]
            elif kind in ('RandomResizedCrop', 'Resize') and \
                    name.endswith(kind) and 'scale' in transform:
                size = transform['scale']
            else:
                continue
            if isinstance(size, int):
                return (size, size)
            if kind == 'crop_size':  # mmdet: (h, w)
                return (int(size[0]), int(size[1]))
            return (int(size[1]), int(size[0]))  # mmcv scales are (w, h)
    raise ValueError(
        f"step_cost: entry '{entry['name']}' ({entry['task']}): no crop or "
        'resize in its pipeline to take the input size from')


def target_set(model, task: str, vocabulary_size: int
               ) -> Tuple[str, int, Optional[List[str]]]:
    """(kind, N, class texts) of the targets a task compares with."""
    head = model.tasks[task]
    if getattr(head, 'classes', None):
        return 'classes', head.num_classes, head.class_texts(False)
    if task in ('captioning', 'mlm'):
        return 'vocabulary', vocabulary_size, None
    return 'none', 0, None


def class_subset(texts: List[str], num: int, tokenizer) -> List[str]:
    """``num`` class names evenly spaced over ``texts``, holding the
    longest (in tokens), so the subset is padded as the whole set."""
    lengths = [len(tokenizer(t)['input_ids']) for t in texts]
    longest = max(range(len(texts)), key=lengths.__getitem__)
    step = len(texts) / num
    picks = {int(i * step) for i in range(num)}
    picks.discard(longest)
    picks = sorted(picks)[:num - 1] + [longest]
    return [texts[i] for i in sorted(picks)]


def set_targets(model, task: str, kind: str, num: int,
                class_texts: Optional[List[str]], texts: Sequence[str]):
    """Make the task compare with ``num`` targets."""
    if kind == 'classes':
        model.tasks[task].set_classes(
            class_subset(class_texts, num, model.text_encoder.tokenizer))
    elif kind == 'vocabulary':
        tokenizer = model.text_encoder.tokenizer
        ids = []
        for text in texts:  # the batch's tokens first, so they count
            ids += tokenizer(text, add_special_tokens=False)['input_ids']
        ids = list(dict.fromkeys(ids))
        for token in range(len(tokenizer)):
            if len(ids) >= num:
                break
            if token not in ids:
                ids.append(token)
        for count in (num - 1, num):  # the end token is added if missing
            model.set_vocabulary(ids[:count])
            if len(model.vocabulary_token_ids()) == num:
                return
        raise RuntimeError(f'step_cost: cannot make {num} vocabulary '
                           'targets')


# ----------------------------------------------------------- measuring
def measure(model, data: dict) -> Dict:
    """One forward and backward of a collated batch: FLOPs by part and
    direction, peak bytes."""
    data = model.data_preprocessor(data, True)
    model.zero_grad(set_to_none=True)
    gc.collect()
    counter = PhaseCounter()
    with counter, model_phases(model, counter):
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
    del loss, losses
    model.zero_grad(set_to_none=True)
    flops = {}
    for phase, counts in counter.by_phase().items():
        part = 'loss' if phase == DEFAULT_PHASE else phase
        for direction, value in counts.items():
            flops[(part, direction)] = flops.get((part, direction),
                                                 0) + value
    return dict(flops=flops, peak_bytes=counter.peak_bytes)


def bilinear(points: Dict[Tuple[float, float], float], x: float,
             y: float) -> float:
    """The bilinear fit ``a + b x + c y + d x y`` of values at
    ``{(x_i, y_j)}`` (two of each, or one where that axis is not fitted),
    evaluated at (x, y)."""
    xs = sorted({p[0] for p in points})
    ys = sorted({p[1] for p in points})
    x1, y1 = xs[0], ys[0]
    base = points[(x1, y1)]
    fx = (x - x1) / (xs[1] - x1) if len(xs) > 1 else 0.0
    fy = (y - y1) / (ys[1] - y1) if len(ys) > 1 else 0.0
    dx = points[(xs[1], y1)] - base if len(xs) > 1 else 0.0
    dy = points[(x1, ys[1])] - base if len(ys) > 1 else 0.0
    dxy = (points[(xs[1], ys[1])] - points[(xs[1], y1)] -
           points[(x1, ys[1])] + base) if (len(xs) > 1
                                            and len(ys) > 1) else 0.0
    return base + fx * dx + fy * dy + fx * fy * dxy


def additive_fit(row: Dict) -> Tuple[float, float, float]:
    """``(a, b, c)`` of the peak bytes of the measured steps of a row as
    ``a + b x + c y``: least squares over the points, ``b, c >= 0``.

    The samples' saved activations (b per sample or pixel) and the targets'
    (c per target) are alive together at the end of the forward, so they
    add; the one tensor that grows with both, the similarities of every
    position with every target, is too small at the measured sizes to be
    fitted and is added by :func:`activation_bytes` from its FLOPs."""
    width = row['width']
    # without their own similarities (added back at the evaluated size)
    peaks = {(p['x'], p['y']): p['peak_bytes'] - similarity_bytes(
        p['flops'].get('loss/forward', 0.0), width) for p in row['points']}
    xs = sorted({x for x, _ in peaks})
    ys = sorted({y for _, y in peaks})
    b = c = 0.0
    if len(xs) > 1:
        b = max(0.0, sum(peaks[(xs[1], y)] - peaks[(xs[0], y)]
                         for y in ys) / len(ys) / (xs[1] - xs[0]))
    if len(ys) > 1:
        c = max(0.0, sum(peaks[(x, ys[1])] - peaks[(x, ys[0])]
                         for x in xs) / len(xs) / (ys[1] - ys[0]))
    a = sum(v - b * x - c * y for (x, y), v in peaks.items()) / len(peaks)
    return a, b, c


#: copies of the (positions, targets) similarities alive in the loss's
#: backward: the logits, the saved log-softmax and the logits' gradient
SIMILARITY_COPIES = 3


def similarity_bytes(loss_forward_flops: float, width: int) -> float:
    """fp32 bytes of the similarity matrices alive in the loss's backward:
    ``SIMILARITY_COPIES`` x its elements, the loss's forward FLOPs / (2 D)
    (one dot product of width D per element)."""
    return loss_forward_flops / (2 * width) * 4 * SIMILARITY_COPIES


def activation_bytes(row: Dict, x: float, local: int, num: int,
                     flops: Dict) -> float:
    """Activation, temporary and gradient bytes of a step of ``x`` samples
    (pixels) encoding ``local`` of ``num`` targets.

    :func:`additive_fit` at ``(x, local)``, plus the gathered ``(num -
    local, D)`` embeddings and their gradient, plus ``SIMILARITY_COPIES``
    fp32 copies of the similarity matrix (:func:`similarity_bytes`)."""
    a, b, c = additive_fit(row)
    width = row['width']
    return (a + b * x + c * local + (num - local) * width * 4 * 2 +
            similarity_bytes(flops.get(('loss', 'forward'), 0.0), width))


def sample_texts(samples) -> List[str]:
    """The captions and texts of a batch's samples."""
    texts = []
    for sample in samples:
        for key in ('gt_caption', 'text'):
            value = sample.get(key)
            if value:
                texts += [value] if isinstance(value, str) else list(value)
    return texts


def cost_entry(model, entry: dict, args, vocabulary_size: int) -> Dict:
    """The measured steps of an entry (see :func:`evaluate` for the step
    at its per-GPU batch and input)."""
    task, batch = entry['task'], entry['batch_size']
    size = paper_input(entry, model)
    kind, num, class_texts = target_set(model, task, vocabulary_size)
    words = (model.text_encoder.max_length if task == 'mlm' else
             CAPTION_WORDS)
    localization = task in LOCALIZATION
    # axis x: samples, or pixels (one image per GPU) for localization
    if localization:
        side = max(size)
        if side > args.measure_size:
            small = args.measure_size
            sides = [small, int(round(small * 1.25 / 32)) * 32]
        else:
            sides = [side]
        xs = [(s * s) for s in sides]
        x_target = size[0] * size[1]
        shapes = {x: ((s, s) if len(sides) > 1 or s != side else size)
                  for x, s in zip(xs, sides)}
    else:
        xs = ([args.measure_batch, 2 * args.measure_batch]
              if batch > args.measure_batch else [batch])
        x_target = batch
    if kind == 'none':
        ys, y_target = [0], 0
    else:
        counts = MEASURED_TARGETS[kind]
        ys = [c for c in counts if c < num][:2] or [num]
        if len(ys) == 1 and ys[0] != num:
            ys = [num]
        y_target = num
    extrapolated = (max(xs) != x_target) or (max(ys) != y_target)
    points = {}
    for x in xs:
        b, shape = (1, shapes[x]) if localization else (x, size)
        # labels within the smallest measured class subset
        data = synthetic_batch(task, b, shape, max(min(ys), 1), seed=0,
                               words=words)
        texts = sample_texts(data['data_samples'])
        for y in ys:
            if kind != 'none':
                set_targets(model, task, kind, y, class_texts, texts)
            start = time.perf_counter()
            points[(x, y)] = measure(model, copy.deepcopy(data))
            log(f'{task}: measured batch {b}, input '
                f'{"x".join(map(str, shape)) if shape[0] else "text"}, '
                f'{y} targets in {time.perf_counter() - start:.1f} s')
    check = None
    if (args.check_batch and not localization and extrapolated
            and args.check_batch > max(xs)):
        # a held-out step: larger than the fitted ones, not in the fit
        data = synthetic_batch(task, args.check_batch, size,
                               max(min(ys), 1), seed=0, words=words)
        if kind != 'none':
            set_targets(model, task, kind, ys[-1], class_texts,
                        sample_texts(data['data_samples']))
        measured = measure(model, data)
        check = dict(x=args.check_batch, y=ys[-1],
                     peak_bytes=measured['peak_bytes'])
        log(f'{task}: held-out check, batch {args.check_batch}, '
            f'{ys[-1]} targets: {measured["peak_bytes"] / 1e9:.2f} GB')
    if class_texts is not None:  # the head's own names back
        model.tasks[task].set_classes(class_texts)
    return dict(task=task, entry=entry['name'], batch=batch,
                input=('x'.join(map(str, size)) if size[0] else
                       f'{model.text_encoder.max_length} tokens'),
                targets=num, target_kind=kind, x=x_target,
                extrapolated=extrapolated, width=model.decoder.embed_dims,
                check=check,
                points=[dict(x=x, y=y, peak_bytes=v['peak_bytes'],
                             flops={f'{k[0]}/{k[1]}': f
                                    for k, f in v['flops'].items()})
                        for (x, y), v in points.items()])


def local_targets(num: int, gpus: int) -> int:
    """Targets one GPU encodes: all (one GPU, or fewer targets than GPUs,
    as ``UniPerceiverV2.shards_targets``), else the largest shard."""
    return num if gpus <= 1 or num < gpus else math.ceil(num / gpus)


def evaluate(row: Dict, gpus: int = 1, checkpoint: Union[bool, str] = True,
             chunk: int = 4096) -> Dict:
    """The step of a measured entry at its batch and input, on ``gpus``
    GPUs with sharded targets (``gpus=1``: every GPU encodes every
    target), with ``checkpoint_targets=checkpoint``.

    Returns:
        dict: ``flops`` {(part, direction): FLOPs}, ``activation_bytes``,
        ``local`` (targets this GPU encodes), ``checkpointed``.
    """
    num = row['targets']
    local = local_targets(num, gpus)
    points = {(p['x'], p['y']): p for p in row['points']}
    keys = sorted({k for p in row['points'] for k in p['flops']})
    flops = {}
    for key in keys:
        values = {xy: p['flops'].get(key, 0) for xy, p in points.items()}
        part, direction = key.split('/')
        # the target encoding is this GPU's shard; the similarities are
        # with every (gathered) target
        y = local if part == 'targets' else num
        flops[(part, direction)] = max(0.0, bilinear(values, row['x'], y))
    act = activation_bytes(row, row['x'], local, num, flops)
    checkpointed = row['target_kind'] != 'none' and (
        local > chunk if checkpoint == 'auto' else bool(checkpoint))
    if checkpointed:
        # one more forward of the shard in the backward; the activations
        # of one chunk at a time, every row's output and gradient kept
        flops[('targets', 'recompute')] = flops.get(('targets', 'forward'),
                                                    0.0)
        per_target = additive_fit(row)[2]
        kept = min(local, chunk)
        act -= max(0.0, per_target - row['width'] * 4 * 2) * (local - kept)
    return dict(flops=flops, activation_bytes=act, local=local,
                checkpointed=checkpointed)


def memory_check(row: Dict) -> Optional[str]:
    """The memory model against the row's held-out step (``--check-batch``),
    as a sentence; None without one."""
    check = row.get('check')
    if not check:
        return None
    loss = bilinear({(p['x'], p['y']): p['flops'].get('loss/forward', 0)
                     for p in row['points']}, check['x'], check['y'])
    predicted = activation_bytes(row, check['x'], check['y'], check['y'],
                                 {('loss', 'forward'): loss})
    measured = check['peak_bytes']
    return (f"memory model, {row['task']}: a held-out step of "
            f"{check['x']} samples and {check['y']} targets, predicted "
            f'{predicted / 1e9:.2f} GB of activations, measured '
            f'{measured / 1e9:.2f} GB ({predicted / measured - 1:+.0%})')


# -------------------------------------------------------------- report
def part_flops(step: Dict, part: str) -> Tuple[float, float]:
    """(forward, backward incl. recomputation) FLOPs of a part of an
    evaluated step."""
    f = step['flops']
    return (f.get((part, 'forward'), 0),
            f.get((part, 'backward'), 0) + f.get((part, 'recompute'), 0))


def step_flops(step: Dict) -> float:
    return sum(step['flops'].values())


def target_share(step: Dict) -> float:
    """The target encoding's share of an evaluated step's FLOPs."""
    total = step_flops(step)
    return sum(part_flops(step, 'targets')) / total if total else 0.0


def si(value: float) -> str:
    """``1.234e12`` -> ``'1.23 T'`` (FLOPs)."""
    for factor, suffix in ((1e15, 'P'), (1e12, 'T'), (1e9, 'G'), (1e6, 'M'),
                           (1e3, 'K')):
        if abs(value) >= factor:
            return f'{value / factor:.3g} {suffix}'
    return f'{value:.0f}'


def milliseconds(step: Dict, device: str, mfu: float) -> str:
    peak = dict(PEAK_BF16_TFLOPS)[device] * 1e12
    return f'{step_flops(step) / (peak * mfu) * 1e3:.3g}'


def report(rows: List[Dict], params: int, gpus: int,
           checkpoint: Union[bool, str], chunk: int, args
           ) -> Tuple[str, str, List[str], List[list]]:
    """The markdown of the FLOPs table (one GPU of ``gpus`` with sharded
    targets) and of the checkpointing table, the summary's header and
    rows."""
    states = params * 12
    flop_rows, summary, lever_rows = [], [], []
    for row in rows:
        sharded = evaluate(row, gpus, checkpoint, chunk)
        replicated = evaluate(row, 1, checkpoint, chunk)
        cells = [row['task'], row['batch'], row['input'],
                 f"{sharded['local']} of {row['targets']}"
                 if row['targets'] else '-']
        for part in PARTS:
            fwd, bwd = part_flops(sharded, part)
            cells.append(f'{si(fwd)} / {si(bwd)}')
        cells.append(si(step_flops(sharded)))
        flop_rows.append(cells)
        memory = (sharded['activation_bytes'] + states) / 1e9
        how = 'extrapolated' if row['extrapolated'] else 'measured'
        summary.append(
            [row['task'], f'{memory:.1f} ({how})',
             'yes' if memory <= GPU_MEMORY_GB else '**no**',
             milliseconds(replicated, 'H100', args.mfu),
             milliseconds(sharded, 'H100', args.mfu),
             milliseconds(sharded, 'A100', args.mfu),
             f'{target_share(replicated):.0%}'] +
            [f'{target_share(evaluate(row, g, checkpoint, chunk)):.0%}'
             for g in args.gpus])
        if row['target_kind'] != 'none':
            steps = {mode: evaluate(row, gpus, mode, chunk)
                     for mode in (True, 'auto')}
            ratio = step_flops(steps['auto']) / step_flops(steps[True])
            lever_rows.append([row['task'], sharded['local']] + [
                f"{si(step_flops(steps[m]))}, "
                f"{(steps[m]['activation_bytes'] + states) / 1e9:.1f} GB"
                for m in (True, 'auto')
            ] + [f'{ratio:.2f}'])
    flop_table = markdown_table(
        ['task', 'batch / GPU', 'input', 'targets / GPU'] +
        [f'{p} fwd / bwd' for p in PARTS] + ['step'], flop_rows)
    lever_table = markdown_table(
        ['task', 'targets / GPU', 'checkpoint_targets=True: FLOPs, memory',
         "'auto': FLOPs, memory", 'FLOPs ratio'], lever_rows)
    header = ['task', f'peak memory GB ({gpus} GPUs)', 'fits 80 GB',
              f'H100 ms, replicated (MFU {args.mfu:.0%})',
              f'H100 ms, sharded over {gpus}', f'A100 ms, sharded over {gpus}',
              'target share, replicated'] + [
                  f'sharded over {g}' for g in args.gpus]
    return flop_table, lever_table, header, summary


def config_gpus(config: str) -> int:
    """The GPUs a config is named for (``..._16xb-...`` -> 16), else 1."""
    match = re.search(r'_(\d+)xb', osp.basename(config))
    return int(match.group(1)) if match else 1


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(
        description='FLOPs, memory and predicted step time of one training '
        'step of each task of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--gpus', type=int, nargs='+',
                        default=list(SHARD_GPUS),
                        help='GPU counts of the target share columns')
    parser.add_argument('--mfu', type=float, default=0.4,
                        help='model FLOPs utilisation of the predicted '
                        'step times')
    parser.add_argument('--measure-batch', type=int, default=2,
                        help='samples of the smaller measured step')
    parser.add_argument('--measure-size', type=int, default=512,
                        help='crop side of the smaller measured '
                        'detection / segmentation step')
    parser.add_argument('--check-batch', type=int, default=0,
                        help='also measure a step of this many samples '
                        'and report the memory model\'s error on it '
                        '(0: off)')
    parser.add_argument('--task', nargs='+', default=None,
                        help='tasks to cost (default: every entry task)')
    parser.add_argument('--config-gpus', type=int, default=None,
                        help='GPUs the targets are sharded over (default: '
                        'the config name\'s, e.g. 16 for _16xb; 1 when '
                        'shard_targets is off)')
    parser.add_argument('--json', help='write the measurements here')
    parser.add_argument('--from-json', help='report these measurements '
                        '(an earlier --json) instead of measuring')
    parser.add_argument('--write', help='add the section to this markdown '
                        'file (e.g. docs/benchmark.md)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if not 0 < args.mfu <= 1:
        parser.error(f'--mfu must be in (0, 1], got {args.mfu}')
    return args


def measure_config(args, cfg: Config) -> Dict:
    """Measure every entry of the config (see the module docstring)."""
    entries = first_entry_per_task(cfg.train_dataloader)
    if args.task:
        unknown = set(args.task) - {e['task'] for e in entries}
        if unknown:
            raise KeyError(f'--task {sorted(unknown)}: the config trains '
                           f'only {[e["task"] for e in entries]}')
        entries = [e for e in entries if e['task'] in args.task]
    with tempfile.TemporaryDirectory() as tmp:
        model_cfg, notes = offline_model_cfg(cfg, tmp)
        torch.manual_seed(0)
        model = MODELS.build(model_cfg).train()
        vocabulary_size = len(model.text_encoder.tokenizer)
        params = sum(p.numel() for p in model.parameters())
        log(f'{params / 1e6:.1f} M parameters; {len(entries)} tasks')
        rows = [cost_entry(model, entry, args, vocabulary_size)
                for entry in entries]
    return dict(config=args.config, params=params, notes=notes, rows=rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmupv2'))
    transformers_logging.set_verbosity_error()  # texts longer than L
    with current_logger_level('ERROR'):  # quiet while measuring
        return _report(args, cfg)


def _report(args: argparse.Namespace, cfg: Config) -> int:
    """Measure (or read) the rows of ``cfg`` and print / write the tables."""
    checkpoint = cfg.model.get('checkpoint_targets', 'auto')
    chunk = cfg.model.get('target_chunk_size', 4096)
    gpus = args.config_gpus or config_gpus(args.config)
    if not cfg.model.get('shard_targets', True):
        gpus = 1
    if args.from_json:
        with open(args.from_json) as f:
            measured = json.load(f)
    else:
        measured = measure_config(args, cfg)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(measured, f, indent=1)
    params = measured['params']
    notes = measured['notes'] + [
        n for n in map(memory_check, measured['rows']) if n]
    flop_table, lever_table, header, summary = report(
        measured['rows'], params, gpus, checkpoint, chunk, args)
    name = osp.splitext(osp.basename(args.config))[0]
    print(f'\nOne training step on one of {gpus} GPUs of {name} '
          f'({params / 1e6:.1f} M parameters), FLOPs\n')
    print(flop_table)
    print()
    print(markdown_table(header, summary))
    print(f'\ncheckpoint_targets on {gpus} GPUs\n')
    print(lever_table)
    for note in notes:
        print(f'- {note}')
    if args.write:
        checks = {r['check']['x'] for r in measured['rows'] if r.get('check')}
        check_flag = f' --check-batch {max(checks)}' if checks else ''
        description = (
            f'Command: `python tools/analysis_tools/step_cost.py '
            f'{args.config}{check_flag} --write {args.write}`. One '
            'training step on one '
            f'GPU of {gpus}, targets sharded (`shard_targets`), at Table 8\'s '
            "batch and the config's input sizes, random weights, "
            f'{params / 1e6:.1f} M parameters. FLOPs (2 per multiply-add '
            'of matrix products, convolutions, attention; backward includes '
            'the recomputation of checkpointed targets) by part:\n\n' +
            flop_table + '\n\n`checkpoint_targets` (`True`: every chunk '
            "recomputed in the backward; `'auto'`, the default: only when "
            'a GPU encodes more than one chunk of '
            f'{chunk}; the same result):\n\n' + lever_table +
            '\n\nMemory: fp32 activations, temporaries and gradients as '
            'measured on the CPU, plus 12 bytes per parameter (weights, '
            'AdamW moments). Where it says extrapolated, a model of the '
            'smaller steps: a fixed part, a part per sample (pixel) and a '
            'part per target of this GPU, least squares, plus the gathered '
            'embeddings and three fp32 copies of the similarity matrix '
            '(docs/tools.md, step_cost). '
            'Predicted times: step FLOPs / (dense bf16 peak x MFU '
            f'{args.mfu:.0%}). Target share: the target encoding\'s FLOPs '
            'over the step\'s, every GPU encoding every target '
            '(replicated) or its shard. ' +
            ' '.join(f'{n[0].upper()}{n[1:]}.' for n in notes))
        write_section(args.write, f'Paper-scale step cost: {name}',
                      description, header, summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
