# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Convert image-text pair sources to mmupv2's JSON-lines format.

Output: one ``{"image": "<path relative to the data root>", "caption":
"<text>"}`` per line, read by ``ImageTextPairDataset``.

Sources::

    # CC3M, CC12M, SBU, YFCC downloaded with img2dataset (output_format
    # "files": <shard>/<key>.jpg next to <key>.txt holding the caption)
    python tools/dataset_converters/image_text_pairs.py img2dataset \
        data/cc3m/images data/cc3m/annotations/train.jsonl --root data/cc3m

    # a Karpathy-split file (COCO Caption, Flickr30k) -> its train pairs
    python tools/dataset_converters/image_text_pairs.py karpathy \
        data/coco/annotations/dataset_coco.json \
        data/coco/annotations/pairs_train.jsonl --split train restval

    # Visual Genome region descriptions
    python tools/dataset_converters/image_text_pairs.py vg \
        data/vg/region_descriptions.json data/vg/annotations/train.jsonl \
        --image-dir VG_100K

    # any TSV with an image path column and a caption column
    python tools/dataset_converters/image_text_pairs.py tsv pairs.tsv \
        out.jsonl --image-col 0 --caption-col 1 [--skip-header]

Pairs whose caption is empty are dropped and counted; the script prints how
many pairs it wrote.
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
from typing import Iterable, Iterator, Tuple

Pair = Tuple[str, str]
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.webp')


def from_img2dataset(image_dir: str, root: str) -> Iterator[Pair]:
    """Pairs of an img2dataset "files" folder: every image with a sibling
    ``.txt`` caption; paths relative to ``root``."""
    for dirpath, _, files in sorted(os.walk(image_dir)):
        for name in sorted(files):
            stem, ext = osp.splitext(name)
            if ext.lower() not in IMAGE_EXTS:
                continue
            txt = osp.join(dirpath, stem + '.txt')
            if not osp.exists(txt):
                continue
            with open(txt, encoding='utf-8') as f:
                caption = f.read().strip()
            yield osp.relpath(osp.join(dirpath, name), root), caption


def from_karpathy(ann_file: str, splits: Iterable[str]) -> Iterator[Pair]:
    """Pairs of the given splits of a Karpathy-split JSON file."""
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    splits = set(splits)
    for img in data['images']:
        if img['split'] not in splits:
            continue
        path = '/'.join(
            p for p in (img.get('filepath', ''), img['filename']) if p)
        for sentence in img['sentences']:
            yield path, sentence['raw'].strip()


def from_visual_genome(region_file: str, image_dir: str) -> Iterator[Pair]:
    """Pairs of Visual Genome's ``region_descriptions.json``: each region's
    phrase with its image (``<image_dir>/<image id>.jpg``)."""
    with open(region_file, encoding='utf-8') as f:
        data = json.load(f)
    for entry in data:
        for region in entry['regions']:
            yield (f"{image_dir}/{region['image_id']}.jpg",
                   region['phrase'].strip())


def from_tsv(tsv_file: str, image_col: int, caption_col: int,
             skip_header: bool) -> Iterator[Pair]:
    """Pairs of a TSV file's image and caption columns."""
    with open(tsv_file, encoding='utf-8', newline='') as f:
        reader = csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE)
        for lineno, row in enumerate(reader, 1):
            if skip_header and lineno == 1:
                continue
            if len(row) <= max(image_col, caption_col):
                raise ValueError(
                    f'{tsv_file}, line {lineno}: {len(row)} column(s), '
                    f'need column {max(image_col, caption_col)}')
            yield row[image_col].strip(), row[caption_col].strip()


def write_jsonl(pairs: Iterable[Pair], out_file: str) -> Tuple[int, int]:
    """Write the pairs; return ``(written, dropped for empty caption)``."""
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    written = dropped = 0
    with open(out_file, 'w', encoding='utf-8') as f:
        for image, caption in pairs:
            caption = ' '.join(caption.split())
            if not caption or not image:
                dropped += 1
                continue
            f.write(json.dumps(dict(image=image, caption=caption),
                               ensure_ascii=False) + '\n')
            written += 1
    return written, dropped


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert image-text pairs to mmupv2 JSON lines')
    sub = parser.add_subparsers(dest='source', required=True)
    p = sub.add_parser('img2dataset')
    p.add_argument('image_dir')
    p.add_argument('out')
    p.add_argument('--root', required=True,
                   help='data root the image paths are relative to')
    p = sub.add_parser('karpathy')
    p.add_argument('ann_file')
    p.add_argument('out')
    p.add_argument('--split', nargs='+', default=['train', 'restval'])
    p = sub.add_parser('vg')
    p.add_argument('region_file')
    p.add_argument('out')
    p.add_argument('--image-dir', default='VG_100K')
    p = sub.add_parser('tsv')
    p.add_argument('tsv_file')
    p.add_argument('out')
    p.add_argument('--image-col', type=int, default=0)
    p.add_argument('--caption-col', type=int, default=1)
    p.add_argument('--skip-header', action='store_true')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.source == 'img2dataset':
        pairs = from_img2dataset(args.image_dir, args.root)
    elif args.source == 'karpathy':
        pairs = from_karpathy(args.ann_file, args.split)
    elif args.source == 'vg':
        pairs = from_visual_genome(args.region_file, args.image_dir)
    else:
        pairs = from_tsv(args.tsv_file, args.image_col, args.caption_col,
                         args.skip_header)
    written, dropped = write_jsonl(pairs, args.out)
    print(f'wrote {written} pairs to {args.out} ({dropped} dropped: empty '
          'caption or image)')
    return 0 if written else 1


if __name__ == '__main__':
    sys.exit(main())
