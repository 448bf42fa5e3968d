# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Time three inference paths of the unified task formulation.

1. 1000-class classification: the target side (class-name embeddings via
   text encoder + unified decoder) cached vs re-encoded on every call
   (target >= 20x), and the whole classification call both ways.
2. Caption beam search (beam 2, 20 tokens; the end token is banned so every
   run decodes all 20 steps) with the decoder's key/value cache vs
   recomputing the whole sequence at every step (target >= 3x).
3. The conditional-MoE decoder (8 experts, top-2, attribute routing with
   merged expert weights) vs the dense decoder of the same widths, forward
   at inference and forward + backward in training (target <= 1.2x).

The model is random-init: a RoBERTa built from a config with the shapes
benchmark's tokenizer and the stub image encoder (the region-proposal
encoder is not what is measured here). ``--preset paper`` uses the paper's
widths (RoBERTa-base-sized text encoder, 6-layer BERT-base decoder, 256-d
image tokens, O = 200 regional + 10 + 7x7 global tokens); ``--preset small``
a quarter of them for a quick run.

    python tools/analysis_tools/benchmark_tasks.py [--preset paper] \
        [--repeats 5] [--threads N] [--write docs/benchmark.md]
"""
import argparse
import tempfile
from functools import partial
from typing import Dict, List

import torch

import mmupv2.testing  # noqa: F401  (registers StubImageEncoder)
from mmupv2.datasets.shapes import generate_shapes
from mmupv2.models import UniPerceiverV2
from mmupv2.models.decoders import TokenSegment, UnifiedDecoder
from mmupv2.models.tasks import (
    CachedCaptionStepper,
    RecomputeCaptionStepper,
    beam_search,
)
from mmupv2.structures import UPv2DataSample
from mmupv2.utils.benchmark_table import (
    parse_benchmark_args,
    time_in_turn,
    write_section,
)

PRESETS = {
    'paper':
    dict(text=dict(hidden_size=768, num_hidden_layers=12,
                   num_attention_heads=12, intermediate_size=3072),
         decoder=dict(embed_dims=768, num_layers=6, num_heads=12,
                      feedforward_channels=3072),
         image_dims=256, num_regions=200, num_pools=10, image_size=112),
    'small':
    dict(text=dict(hidden_size=192, num_hidden_layers=3,
                   num_attention_heads=3, intermediate_size=768),
         decoder=dict(embed_dims=192, num_layers=3, num_heads=3,
                      feedforward_channels=768),
         image_dims=64, num_regions=50, num_pools=10, image_size=112),
}


def build_model(preset: dict, tokenizer: str, moe: bool = True):
    moe_cfg = dict(num_experts=8, top_k=2, noise_std=1.0) if moe else None
    torch.manual_seed(0)
    return UniPerceiverV2(
        image_encoder=dict(
            type='StubImageEncoder',
            embed_dims=preset['image_dims'],
            num_regions=preset['num_regions'],
            num_global_pools=preset['num_pools']),
        text_encoder=dict(
            type='HFTextEncoder',
            tokenizer=tokenizer,
            load_pretrained=False,
            max_length=32,
            hf_config=dict(model_type='roberta',
                           max_position_embeddings=64, **preset['text'])),
        decoder=dict(
            type='UnifiedDecoder',
            image_in_dims=preset['image_dims'],
            moe_cfg=moe_cfg,
            **preset['decoder']),
        tasks=dict(
            classification=dict(type='ClassificationTask'),
            captioning=dict(type='CaptioningTask'))).eval()


def class_names(model: UniPerceiverV2, num: int) -> List[str]:
    """``num`` distinct made-up names of 2-3 words of the tokenizer."""
    tok = model.text_encoder.tokenizer
    words = sorted({
        w.lstrip('\u0120')
        for w in tok.get_vocab() if w.startswith('\u0120') and len(w) > 3
    })
    gen = torch.Generator().manual_seed(0)
    names = set()
    while len(names) < num:
        k = 2 + int(torch.randint(2, (), generator=gen))
        idx = torch.randint(len(words), (k, ), generator=gen).tolist()
        names.add(' '.join(words[i] for i in idx))
    return sorted(names)


def samples(task: str, num: int, size: int) -> List[UPv2DataSample]:
    out = []
    for _ in range(num):
        sample = UPv2DataSample(metainfo=dict(img_shape=(size, size)))
        out.append(sample.set_task(task))
    return out


def bench_classification(model, args, size) -> List[list]:
    names = class_names(model, args.num_classes)
    model.set_classes('classification', names)
    images = torch.randn(args.batch_size, 3, size, size)
    batch = samples('classification', args.batch_size, size)

    def targets_uncached():
        model.target_cache.clear()
        return model.encode_targets(names)

    def classify_uncached():
        model.target_cache.clear()
        return model(images, batch, mode='predict')

    with torch.no_grad():
        targets = time_in_turn(
            dict(uncached=targets_uncached,
                 cached=lambda: model.encode_targets(names)),
            args.repeats)
        classify = time_in_turn(
            dict(uncached=classify_uncached,
                 cached=lambda: model(images, batch, mode='predict')),
            args.repeats)
    num, bsz = args.num_classes, args.batch_size
    return [
        [f'{num} class embeddings, re-encoded',
         f'{targets["uncached"][0] * 1e3:.1f}', '1.0x'],
        [f'{num} class embeddings, cached',
         f'{targets["cached"][0] * 1e3:.3f}',
         f'{1 / targets["cached"][1]:.0f}x'],
        [f'classify {bsz} images, re-encoding targets',
         f'{classify["uncached"][0] * 1e3:.1f}', '1.0x'],
        [f'classify {bsz} images, cached targets',
         f'{classify["cached"][0] * 1e3:.1f}',
         f'{1 / classify["cached"][1]:.1f}x'],
    ]


def bench_captioning(model, args, size) -> List[list]:
    task = model.tasks['captioning']
    special = model.special_tokens
    images = torch.randn(args.batch_size, 3, size, size)
    batch = samples('captioning', args.batch_size, size)
    with torch.no_grad():
        image = task.image_input(model, images, batch)
        vocab = model.vocabulary_embeddings()

        def run(stepper_cls):
            return beam_search(
                stepper_cls(task, model, image, vocab),
                args.batch_size,
                bos_id=special.begin_id,
                eos_id=special.end_id,
                beam_size=2,
                max_length=20,
                banned_ids=special.special_ids)  # incl. the end token

        results = time_in_turn(
            {
                'full recompute': lambda: run(RecomputeCaptionStepper),
                'KV cache': lambda: run(CachedCaptionStepper)
            }, args.repeats)
    return [[
        f'beam 2, 20 tokens, {args.batch_size} images, {name}',
        f'{t * 1e3:.1f}', f'{1 / ratio:.1f}x'
    ] for name, (t, ratio) in results.items()]


def bench_moe(preset: dict, args) -> List[list]:
    num_image = preset['num_regions'] + preset['num_pools'] + (
        preset['image_size'] // 16)**2
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(args.batch_size, num_image, preset['image_dims'],
                        generator=gen)
    text = torch.randn(args.batch_size, 20, preset['decoder']['embed_dims'],
                       generator=gen)
    segments = [
        TokenSegment(image, 'image', 'caption_image_input'),
        TokenSegment(text, 'text', 'caption_text_input', causal=True)
    ]
    decoders: Dict[str, UnifiedDecoder] = {}
    for name, moe_cfg in (('dense', None),
                          ('MoE 8 experts top-2', dict(num_experts=8,
                                                       top_k=2))):
        torch.manual_seed(0)
        decoders[name] = UnifiedDecoder(
            image_in_dims=preset['image_dims'],
            text_in_dims=preset['decoder']['embed_dims'],
            moe_cfg=moe_cfg,
            **preset['decoder'])
    def infer(dec):
        with torch.no_grad():
            return dec(segments)

    def train(dec):
        dec.zero_grad()
        dec(segments).hidden_states.sum().backward()

    rows = []
    for mode, step in (('inference', infer), ('training', train)):
        for dec in decoders.values():
            dec.train(mode == 'training')
        results = time_in_turn(
            {name: partial(step, dec)
             for name, dec in decoders.items()}, args.repeats)
        rows += [[
            f'decoder {mode}, {name}, {args.batch_size}x'
            f'{1 + num_image + 20} tokens', f'{t * 1e3:.1f}',
            f'{ratio:.2f}x'
        ] for name, (t, ratio) in results.items()]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--batch-size', type=int, default=4)
    args = parse_benchmark_args(parser, repeats=5)
    preset = PRESETS[args.preset]
    size = preset['image_size']
    with tempfile.TemporaryDirectory() as tmp:
        generate_shapes(tmp, num_train=8, num_val=2, img_size=64)
        model = build_model(preset, f'{tmp}/tokenizer')
    rows = [['**classification target side**', '', '']]
    rows += bench_classification(model, args, size)
    rows += [['**caption beam search**', '', '']]
    rows += bench_captioning(model, args, size)
    rows += [['**unified decoder**', '', '']]
    rows += bench_moe(preset, args)
    header = ['measurement', 'median (ms)', 'speed-up (MoE: time ratio)']
    for row in [header] + rows:
        print(' | '.join(str(c) for c in row))
    if args.write:
        description = (
            f'Preset `{args.preset}`, batch {args.batch_size} (random init; '
            'RoBERTa text encoder built from a config with the shapes '
            'tokenizer, stub image encoder; '
            f'CPU, {torch.get_num_threads()} threads; the compared variants '
            'run '
            f'in turn for {args.repeats} rounds after a warm-up round; '
            'median time and median per-round ratio). Command: `python '
            'tools/analysis_tools/benchmark_tasks.py --preset '
            f'{args.preset} --batch-size {args.batch_size} --repeats '
            f'{args.repeats} --write {args.write}`. Targets: cached class '
            'embeddings >= 20x faster than re-encoding them; KV-cached beam '
            'search >= 3x faster than full recompute; MoE decoder <= 1.2x '
            'the dense decoder.')
        write_section(args.write,
                      f'Task inference paths, {args.preset} widths '
                      '(benchmark_tasks)',
                      description, header, rows)


if __name__ == '__main__':
    main()
