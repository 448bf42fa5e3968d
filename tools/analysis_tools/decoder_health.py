# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Has a checkpoint's unified decoder collapsed? (docs/multi_task_training.md,
"Troubleshooting: every loss stuck at log(number of targets)")

    python tools/analysis_tools/decoder_health.py CONFIG CHECKPOINT \
        [--task classification] [--num 16]

Runs ``--num`` val images of ``--task`` (an entry of ``val_dataloader``
with images) through the model and prints, after every decoder layer, the
mean norm of the residual stream and the spread of ``<SPE>`` over the
batch (mean standard deviation per channel), then the classification
logits' spread. A healthy run keeps the residual norm at the scale of a
single-task run (about 4-16 for the demo model) and ``<SPE>`` different
from image to image; a collapsed one has residual norms of hundreds and
the same logit for every class.
"""
import argparse
import sys

import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--task', default='classification')
    parser.add_argument('--num', type=int, default=16)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from mmupv2.models.decoders import TokenSegment  # noqa: F401
    from mmupv2.models.tasks.base import image_segment
    from mmupv2.registry import DATASETS, MODELS
    from mmupv2.utils import load_model_checkpoint

    init_default_scope('mmupv2')
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model)
    load_model_checkpoint(model, args.checkpoint)
    model.eval()
    if args.task not in cfg.val_dataloader:
        raise KeyError(f'--task {args.task!r} is not an entry of '
                       f'val_dataloader ({sorted(cfg.val_dataloader)})')
    dataset = DATASETS.build(cfg.val_dataloader[args.task].dataset)
    batch = pseudo_collate(
        [dataset[i] for i in range(min(args.num, len(dataset)))])
    data = model.data_preprocessor(batch, False)
    rows = []

    def record(index):

        def hook(module, inputs, output):
            hidden = output[0]
            rows.append((index, float(hidden.norm(dim=-1).mean()),
                         float(hidden[:, 0].std(0).mean())))

        return hook

    handles = [
        layer.register_forward_hook(record(i))
        for i, layer in enumerate(model.decoder.layers)
    ]
    with torch.no_grad():
        enc = model.encode_image(data['inputs'], data['data_samples'])
        spe = model.decode([image_segment(enc, 'image_input')]).spe
    for handle in handles:
        handle.remove()
    print('layer | residual norm (mean over tokens) | <SPE> std over batch')
    for index, norm, spread in rows:
        print(f'{index:5d} | {norm:31.3f} | {spread:.4f}')
    print(f'final <SPE>: norm {float(spe.norm(dim=-1).mean()):.3f}, std '
          f'over batch {float(spe.std(0).mean()):.4f}')
    if 'classification' in model.tasks:
        with torch.no_grad():
            targets = model.tasks['classification'].class_embeddings(model)
            logits = model.tasks['classification'].similarity(spe, targets)
        print(f'classification logits: mean {float(logits.mean()):.3f}, '
              f'std over classes {float(logits.std(-1).mean()):.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
