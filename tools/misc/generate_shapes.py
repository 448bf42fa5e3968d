# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Generate the built-in "shapes" benchmark.

Example::

    python tools/misc/generate_shapes.py --out data/shapes
    python tools/misc/generate_shapes.py --out /tmp/s --num-train 50 \
        --num-val 10 --seed 1 --img-size 128
    # another set (8 other classes, other colours and words) to check that
    # a recipe carries over (docs/custom_dataset.md)
    python tools/misc/generate_shapes.py --out data/other_shapes \
        --style other --seed 7 --img-size 200
    # harder sets: ten visually close, textured shape classes; scenes of
    # items cut from real photographs (those of the scikit-image wheel)
    python tools/misc/generate_shapes.py --out data/close_shapes --style close
    python tools/misc/generate_shapes.py --out data/photo_scenes \
        --style photos

The same arguments always give byte-identical files; see
``mmupv2/datasets/shapes/generator.py`` for the layout and formats and
``photo_scene.py`` beside it for the photo items.
"""
import argparse
import time

from mmengine.utils import ProgressBar

from mmupv2.datasets.shapes import (
    STYLES,
    generate_photo_scenes,
    generate_shapes,
)

#: ``--style`` of the scenes of photo items (not a style of shapes)
PHOTOS = 'photos'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the mmupv2 shapes benchmark (or a harder '
        'set in its formats)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--img-size', type=int, default=160, help='image side in pixels')
    parser.add_argument(
        '--style', default='shapes', choices=sorted(STYLES) + [PHOTOS],
        help='shapes: the built-in benchmark; other: other classes, '
        'colours and words; close: ten visually close classes, textured; '
        'photos: items cut from the photographs of scikit-image')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    bars = {}

    def progress(split: str, done: int, total: int) -> None:
        if split not in bars:
            print(f'drawing {total} {split} images')
            bars[split] = ProgressBar(total)
        bars[split].update()
        if done == total:
            print()

    start = time.time()
    if args.style == PHOTOS:
        meta = generate_photo_scenes(args.out, args.num_train, args.num_val,
                                     args.seed, args.img_size, progress)
    else:
        meta = generate_shapes(args.out, args.num_train, args.num_val,
                               args.seed, args.img_size, progress,
                               args.style)
    print(f"wrote {meta['num_train']} train / {meta['num_val']} val images "
          f"of {len(meta['classes'])} classes ({', '.join(meta['classes'])}) "
          f'and all annotation formats to {args.out} '
          f'in {time.time() - start:.1f}s')


if __name__ == '__main__':
    main()
