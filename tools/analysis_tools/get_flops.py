# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Parameters and FLOPs of a Uni-Perceiver v2 config: per part (image
encoder, text encoder, decoder) and per task (mmdet's
``tools/analysis_tools/get_flops.py``)::

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]]
        [--task T ...] [--text-length L] [--cfg-options k=v ...]

Prints two tables:

- **parameters** of the image encoder (and its parts), the text encoder,
  the unified decoder, the task heads (one temperature each) and the total;
- **FLOPs of one forward of each task** -- batch 1, ``model(inputs,
  data_samples, mode='tensor')`` in eval mode, a random ``H x W`` image
  (padded by the data preprocessor as in training) and an ``L``-word text
  -- split into the image encoder, the text encoder, the decoder and the
  rest (similarities, heads). Retrieval has an image row and a text row.
  The class-name and vocabulary *targets* are encoded once per evaluation
  and cached (in training: every step), so they have rows of their own and
  the task rows read them from the cache.

FLOPs are counted by mmengine's ``FlopAnalyzer`` (fvcore's counter, which
mmdet's tool uses): a jit trace on the CPU, one FLOP per multiply-add, plus
a handle for ``aten::scaled_dot_product_attention`` (the decoder's and Hugging
Face's attention), which mmengine has none for. Operators without a handle
are not counted; each row names them (the element-wise ones as one number,
:data:`ELEMENTWISE_OPS`).
**Multi-scale deformable attention:** on the CPU it runs mmcv's PyTorch
path, whose ``grid_sample`` mmengine counts as 4 FLOPs per sampled value
while the weighting of the samples (element-wise) is not counted; mmcv's CUDA
kernel (a Python autograd op) would not be counted at all.
"""
import argparse
import contextlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample
from mmupv2.utils import register_all_modules
from mmupv2.utils.benchmark_table import markdown_table

#: The model parts reported separately (attribute names of UniPerceiverV2).
PARTS = ('image_encoder', 'text_encoder', 'decoder')
PART_NAMES = dict(image_encoder='image encoder', text_encoder='text encoder',
                  decoder='decoder')
#: The task rows, in order: (row name, task, input kind).
TASK_ROWS = (('classification', 'classification', 'image'),
             ('detection', 'detection', 'image'),
             ('instance_segmentation', 'instance_segmentation', 'image'),
             ('captioning', 'captioning', 'image+text'),
             ('retrieval (image)', 'retrieval', 'image'),
             ('retrieval (text)', 'retrieval', 'text'),
             ('mlm', 'mlm', 'text'))
#: Operators without a FLOP handle that do no matrix products: element-wise
#: arithmetic, activations, reductions, comparisons, data movement. They are
#: summed up as one number in the output; any other is named.
ELEMENTWISE_OPS = frozenset((
    '__or__ add add_ all clamp_min cos cumsum div embedding exp expand_as '
    'flip gelu isfinite le lerp linalg_vector_norm linspace log lt '
    'masked_fill_ max_pool2d meshgrid mul ne neg new_ones ones_like pow '
    'repeat resolve_conj resolve_neg rsub sigmoid sin softmax sub sum topk '
    'unflatten sqrt rsqrt tanh abs where mean fill_ argmax sort log_softmax '
    'silu relu6 hardswish hardsigmoid').split())
#: Targets traced at once; more are counted by scaling (exact for the
#: vocabulary, whose targets all have 3 tokens).
MAX_TRACED_TARGETS = 128
NOTE = (
    'FLOPs: multiply-adds (mmengine/fvcore convention, as mmdet reports), '
    "batch 1, eval mode, model(..., mode='tensor'); ops listed as not "
    'counted have no FLOP handle. Multi-scale deformable attention: the '
    "PyTorch path's grid_sample is counted as 4 FLOPs per sampled value "
    '(bilinear) and the weighting of the samples is not counted; mmcv\'s '
    'CUDA kernel would not be counted at all. Captioning: one '
    'teacher-forced pass over the caption; beam search decodes step by '
    'step (beam_size x max_length decoder passes). Targets: computed once '
    'per evaluation (cached), every step in training.')


# ------------------------------------------------------------ counting
def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention``: ``q k^T`` and the
    weighted sum of the values, ``B * L * S * (E + Ev)`` multiply-adds for
    q (B..., L, E), k (B..., S, E), v (B..., S, Ev)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for size in q[:-2]:
        batch *= size
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


#: Handles mmengine's FlopAnalyzer lacks.
EXTRA_HANDLES = {'aten::scaled_dot_product_attention': sdpa_flop_jit}


@dataclass
class FlopCount:
    """The FLOPs of one traced call.

    Attributes:
        total: all counted FLOPs.
        by_module: ``{module name: FLOPs}`` (``''`` is the whole module).
        skipped: ``{operator: calls}`` of the operators not counted.
    """
    total: int
    by_module: Dict[str, int] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)

    def scaled(self, factor: float) -> 'FlopCount':
        return FlopCount(
            int(round(self.total * factor)),
            {k: int(round(v * factor))
             for k, v in self.by_module.items()}, self.skipped)


def count_flops(module: nn.Module, inputs: Tuple = ()) -> FlopCount:
    """Trace ``module(*inputs)`` once (without gradient) and count its
    FLOPs with mmengine's ``FlopAnalyzer`` plus :data:`EXTRA_HANDLES`."""
    analyzer = FlopAnalyzer(module, inputs)
    for name, handle in EXTRA_HANDLES.items():
        analyzer.set_op_handle(name, handle)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        total = analyzer.total()
    return FlopCount(total, dict(analyzer.by_module()),
                     Counter(analyzer.unsupported_ops()))


def collect_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a (nested) output: tuples, lists, dicts,
    dataclasses. They are the trace's outputs, so that nothing that
    computes them is dropped as dead code."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from collect_tensors(value)
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from collect_tensors(value)
    elif hasattr(obj, '__dataclass_fields__'):
        for name in obj.__dataclass_fields__:
            yield from collect_tensors(getattr(obj, name))


class TaskForward(nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` as a module of tensors
    only, for the tracer (``inputs`` absent for a text-only batch)."""

    def __init__(self, model: nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(inputs[0] if inputs else None, self.data_samples,
                         mode='tensor')
        return tuple(collect_tensors(out))


class TargetEncoding(nn.Module):
    """The target embeddings of token ids (N, L): ``model._decode_text_ids``
    (text encoder + decoder at ``<SPE>``)."""

    def __init__(self, model: nn.Module, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, attribute: str) -> None:
        super().__init__()
        self.model = model
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.attribute = attribute

    def forward(self) -> torch.Tensor:
        return self.model._decode_text_ids(self.input_ids,
                                           self.attention_mask,
                                           self.attribute)


# ---------------------------------------------------------------- inputs
def make_batch(model: nn.Module, task: str, kind: str,
               shape: Tuple[int, int], text: str) -> Tuple[tuple, list]:
    """One sample of ``task`` through the data preprocessor.

    Returns:
        tuple: the trace inputs (the (1, 3, H', W') padded image, or
        nothing for a text batch) and the data samples.
    """
    sample = UPv2DataSample().set_task(task)
    data = dict(data_samples=[sample])
    if 'image' in kind:
        h, w = shape
        generator = torch.Generator().manual_seed(0)
        data['inputs'] = [
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                          generator=generator)
        ]
        sample.set_metainfo(
            dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
    if kind == 'image+text':
        sample.set_gt_caption([text])
    elif kind == 'text':
        sample.set_text(text)
    data = model.data_preprocessor(data, False)
    inputs = () if data['inputs'] is None else (data['inputs'], )
    return inputs, data['data_samples']


@contextlib.contextmanager
def cached_targets(model: nn.Module) -> Iterator[None]:
    """Within the block the model reads random target embeddings of the
    right shape (as from the inference cache, made before the trace)
    instead of encoding the class names and the vocabulary."""
    vocabulary = len(model.vocabulary_token_ids())
    classes = [getattr(h, 'num_classes', 0) for h in model.tasks.values()]
    bank = torch.randn(max([vocabulary] + classes), model.decoder.embed_dims)
    encode = model.encode_targets

    def encode_targets(texts, attribute='text_target', *, per_batch=False):
        if per_batch:  # texts of the batch (retrieval): traced
            return encode(texts, attribute, per_batch=True)
        return bank[:len(list(texts))]

    model.encode_targets = encode_targets
    model.vocabulary_embeddings = lambda: bank[:vocabulary]
    try:
        yield
    finally:
        del model.encode_targets
        del model.vocabulary_embeddings


# ---------------------------------------------------------------- report
def format_count(value: float, unit: str = '') -> str:
    """``1234567`` -> ``'1.235M'``."""
    for factor, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(value) >= factor:
            return f'{value / factor:.3f}{suffix}{unit}'
    return f'{value:.0f}{unit}'


def _skipped(counter: Counter) -> str:
    """The operators a count left out: the notable ones by name, the
    element-wise ones (:data:`ELEMENTWISE_OPS`) as one number."""
    names = {op: op.replace('aten::', '') for op in counter}
    minor = sum(n for op, n in counter.items()
                if names[op] in ELEMENTWISE_OPS)
    notable = [f'{names[op]} x{n}' for op, n in counter.most_common()
               if names[op] not in ELEMENTWISE_OPS]
    if minor:
        notable.append(f'{minor} element-wise')
    return ', '.join(notable) or '-'


def part_flops(count: FlopCount, prefix: str = 'model.') -> List[int]:
    """FLOPs of each of :data:`PARTS` and of the rest."""
    parts = [count.by_module.get(prefix + p, 0) for p in PARTS]
    return parts + [count.total - sum(parts)]


def parameter_rows(model: nn.Module) -> List[List[str]]:
    """Rows (part, parameters) of the parameter table."""
    counts = parameter_count(model)
    rows = []
    for name, child in model.named_children():
        if name == 'data_preprocessor' or not counts.get(name):
            continue
        label = PART_NAMES.get(name, 'task heads' if name == 'tasks' else
                               name)
        rows.append([label, format_count(counts[name])])
        if name == 'image_encoder':
            for sub, _ in child.named_children():
                if counts.get(f'{name}.{sub}'):
                    rows.append([f'  {sub}',
                                 format_count(counts[f'{name}.{sub}'])])
    rows.append(['total', format_count(counts[''])])
    return rows


def target_rows(model: nn.Module, tasks: Sequence[str]
                ) -> List[Tuple[str, FlopCount]]:
    """(row name, FLOPs) of encoding the class names of each task that has
    them, and of the vocabulary (captioning, MLM)."""
    rows = []
    names: Dict[Tuple[str, ...], List[str]] = {}  # class names -> tasks
    for task in tasks:
        head = model.tasks[task]
        if getattr(head, 'classes', None):
            texts = tuple(head.class_texts(sample_synonyms=False))
            names.setdefault(texts, []).append(task)
    for texts, users in names.items():
        num = min(len(texts), MAX_TRACED_TARGETS)
        count = count_flops(
            TargetEncoding(model, *model.tokenize(list(texts[:num])),
                           'text_target')).scaled(len(texts) / num)
        approx = '' if num == len(texts) else '~'
        rows.append((f'class names of {", ".join(users)} '
                     f'({approx}{len(texts)})', count))
    if any(t in ('captioning', 'mlm') for t in tasks):
        ids = model.vocabulary_ids()
        num = min(len(ids), MAX_TRACED_TARGETS)
        count = count_flops(
            TargetEncoding(model, ids[:num], torch.ones_like(ids[:num]),
                           'vocab_target')).scaled(len(ids) / num)
        rows.append((f'vocabulary ({len(ids)} tokens)', count))
    return rows


def task_rows(model: nn.Module, tasks: Sequence[str], shape: Tuple[int, int],
              text: str) -> List[Tuple[str, str, Tuple, FlopCount]]:
    """(row name, input kind, input shape, FLOPs) of one forward of each
    task."""
    rows = []
    with cached_targets(model):
        for name, task, kind in TASK_ROWS:
            if task not in tasks:
                continue
            inputs, samples = make_batch(model, task, kind, shape, text)
            count = count_flops(TaskForward(model, samples), inputs)
            rows.append((name, kind,
                         tuple(inputs[0].shape) if inputs else (), count))
    return rows


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of a Uni-Perceiver v2 model, per '
        'part and per task')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[224, 224],
        help='input image size: H [W] (padded by the data preprocessor)')
    parser.add_argument(
        '--task', nargs='+', default=None,
        help='tasks to count (default: every task of the model)')
    parser.add_argument(
        '--text-length', type=int, default=20,
        help='words of the input text (captioning, retrieval text, MLM)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise ValueError(f'--shape takes H or H W, got {args.shape}')
    shape = (args.shape[0], args.shape[-1])
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmupv2'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    tasks = list(args.task or model.tasks)
    unknown = [t for t in tasks if t not in model.tasks]
    if unknown:
        raise KeyError(f'--task {unknown}: the model has only '
                       f'{", ".join(model.tasks)}')
    text = ' '.join(['a'] * args.text_length)
    num_tokens = model.text_encoder.tokenize([text])[0].shape[1]

    print(f'Parameters of {args.config}\n')
    print(markdown_table(['part', 'parameters'], parameter_rows(model)))

    header = ['forward', 'input'] + [PART_NAMES[p] for p in PARTS] + [
        'other', 'total', 'not counted (calls)'
    ]
    rows = []
    for name, kind, inputs_shape, count in task_rows(model, tasks, shape,
                                                     text):
        what = []
        if 'image' in kind:
            what.append('x'.join(map(str, inputs_shape[-2:])))
        if 'text' in kind:
            what.append(f'{num_tokens} tokens')
        rows.append([name, ' + '.join(what)] +
                    [format_count(f) for f in part_flops(count)] +
                    [format_count(count.total), _skipped(count.skipped)])
    for name, count in target_rows(model, tasks):
        rows.append([f'targets: {name}', 'text'] +
                    [format_count(f) for f in part_flops(count)] +
                    [format_count(count.total), _skipped(count.skipped)])
    print(f'\nFLOPs of one forward (image {shape[0]}x{shape[1]} before '
          f'padding, text of {num_tokens} tokens)\n')
    print(markdown_table(header, rows))
    print(f'\n{NOTE}')
    print('!!!Please be cautious if you use the results in papers. '
          'You may need to check if all ops are supported and verify '
          'that the flops computation is correct.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
