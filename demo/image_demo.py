# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Run a Uni-Perceiver v2 model on an image (or a folder of images): print
the predictions and write the drawings.

Example::

    python demo/image_demo.py demo.png \\
        configs/uniperceiver_v2/upv2_tiny_shapes.py \\
        --weights work_dirs/demo/iter_1000.pth --task all --out-dir outputs
    # novel categories (paper Appendix C): any class names
    python demo/image_demo.py demo.png CONFIG --weights CKPT \\
        --task detect --classes goldfish tench

The weights are read weights-only and must fit the config's model
(``--allow-partial``, ``--trust-checkpoint``: see ``docs/checkpoints.md``).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

from mmupv2.apis import UniPerceiverInferencer
from mmupv2.structures import UPv2DataSample

#: ``--task all`` runs these, in this order.
IMAGE_TASKS = ('detect', 'segment', 'classify', 'caption')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Uni-Perceiver v2 image demo: detection, instance '
        'segmentation, classification and captioning with one model')
    parser.add_argument('image', help='an image file or a folder of images')
    parser.add_argument('config', help='config file (or config name)')
    parser.add_argument('--weights', help='checkpoint file')
    parser.add_argument(
        '--task', default='all', choices=(*IMAGE_TASKS, 'all'),
        help='what to run (default: all)')
    parser.add_argument(
        '--classes', nargs='+',
        help='class names for detect / segment and labels for classify '
        "(default: the config's, or with --checkpoint-classes the "
        "checkpoint's)")
    parser.add_argument(
        '--checkpoint-classes',
        action='store_true',
        help='default class names from the checkpoint (meta.dataset_meta) '
        "instead of the config's")
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='load only the tensors of --weights that fit the model (with a '
        'warning) instead of stopping with an error')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='read --weights with torch.load(weights_only=False): it may run '
        'code stored in the file; only for files you trust')
    parser.add_argument(
        '--out-dir', default='outputs',
        help='drawings go to OUT_DIR/<task>/ (default: outputs)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='boxes / masks above this score are printed and drawn')
    parser.add_argument(
        '--topk', type=int, default=5, help='labels listed by classify')
    parser.add_argument(
        '--beam-size', type=int, help='caption beams (default: config)')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='images per forward pass')
    return parser.parse_args(argv)


def _name(sample: UPv2DataSample) -> str:
    path = sample.metainfo.get('img_path')
    return osp.basename(path) if path else '<array>'


def format_instances(sample: UPv2DataSample, score_thr: float) -> List[str]:
    """One line per instance above ``score_thr``: name, score, box."""
    instances = sample.pred_instances.cpu()
    keep = instances[instances.scores > score_thr]
    lines = [f'{_name(sample)}: {len(keep)} of {len(instances)} instances '
             f'score > {score_thr}']
    for name, score, box in zip(keep.label_names, keep.scores.tolist(),
                                keep.bboxes.tolist()):
        box = ', '.join(f'{v:.1f}' for v in box)
        lines.append(f'  {name:<16} {score:.3f}  [{box}]')
    return lines


def format_sample(task: str, sample: UPv2DataSample,
                  score_thr: float) -> List[str]:
    """The human-readable lines of a prediction."""
    if task in ('detect', 'segment'):
        return format_instances(sample, score_thr)
    if task == 'classify':
        tops = ', '.join(
            f'{name} {score:.3f}' for name, score in zip(
                sample.pred_topk_classes, sample.pred_topk_scores.tolist()))
        return [f'{_name(sample)}: {tops}']
    return [f'{_name(sample)}: "{sample.pred_caption}"']


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.exists(args.image):
        print(f'error: image {args.image!r} does not exist', file=sys.stderr)
        return 2
    inferencer = UniPerceiverInferencer(
        args.config,
        weights=args.weights,
        device=args.device,
        allow_partial=args.allow_partial,
        trust_checkpoint=True if args.trust_checkpoint else None,
        class_names='checkpoint' if args.checkpoint_classes else 'config')
    tasks = IMAGE_TASKS if args.task == 'all' else (args.task, )
    # a list even for one file, so that every task returns a list
    images = [args.image] if osp.isfile(args.image) else args.image
    common = dict(batch_size=args.batch_size, out_dir=args.out_dir)
    for task in tasks:
        if task in ('detect', 'segment'):
            preds = getattr(inferencer, task)(
                images, classes=args.classes, pred_score_thr=args.score_thr,
                **common)
        elif task == 'classify':
            preds = inferencer.classify(
                images, labels=args.classes, topk=args.topk, **common)
        else:
            preds = inferencer.caption(
                images, beam_size=args.beam_size, **common)
        print(f'[{task}]')
        for sample in preds:
            print('\n'.join(format_sample(task, sample, args.score_thr)))
        print(f'  drawings: {osp.join(args.out_dir, preds[0].task)}/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
