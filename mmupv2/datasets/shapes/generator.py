# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Write the built-in "shapes" benchmark in the community's standard formats.

Layout under ``out_dir`` (``{split}`` is ``train`` and ``val``)::

    images/{split}/000000.png            RGB images, img_size x img_size
    annotations/instances_{split}.json   COCO instances, RLE masks (det/seg)
    annotations/captions_{split}.json    COCO-caption format (caption metric)
    annotations/karpathy_shapes.json     Karpathy ``dataset_*.json`` format
                                         with every split (caption/retrieval)
    annotations/pairs_{split}.jsonl      image-text pairs, one per caption
    classification/{split}.txt           ImageNet-style ``path label`` list
    classification/classes.txt           one class name per line
    text/{split}.txt                     caption corpus, one line each (MLM)
    tokenizer/                           byte-level BPE tokenizer trained on
                                         the train text (AutoTokenizer loads)
    meta.json                            generator version, arguments and
                                         per-class counts

Everything is a pure function of the arguments: the same seed gives
byte-identical files. :func:`write_scene_set` writes these files for any
scene drawer (:func:`~.photo_scene.generate_photo_scenes` uses it too).
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util

from .captions import caption_tokens, make_captions
from .scene import SceneObject, draw_scene
from .styles import SHAPES_STYLE, ShapesStyle, get_style
from .tokenizer import train_tokenizer

#: Bumped whenever the generated data would change for the same seed.
GENERATOR_VERSION = 1
SPLITS = ('train', 'val')
_SPLIT_CODE = {'train': 0, 'val': 1}


def _dump_json(obj, path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, ensure_ascii=False, separators=(',', ':'))


def _rle(mask: np.ndarray) -> Dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']],
            'counts': rle['counts'].decode('ascii')}


#: ``draw(rng, img_size, style=style) -> (RGB uint8 image, objects)``
SceneDrawer = Callable[..., Tuple[np.ndarray, List[SceneObject]]]


def generate_split(out_dir: str, split: str, num_images: int, seed: int,
                   img_size: int,
                   progress: Optional[Callable[[int, int], None]] = None,
                   style: ShapesStyle = SHAPES_STYLE,
                   draw: SceneDrawer = draw_scene) -> List[Dict]:
    """Draw and write one split's images; return one record per image.

    Returns:
        list[dict]: per image ``file_name`` (relative to ``images/``), ``id``,
        ``objects`` (list of :class:`SceneObject`) and ``captions``.
    """
    img_dir = osp.join(out_dir, 'images', split)
    os.makedirs(img_dir, exist_ok=True)
    records = []
    for idx in range(num_images):
        rng = np.random.default_rng([seed, _SPLIT_CODE[split], idx])
        img, objects = draw(rng, img_size, style=style)
        captions = make_captions(objects, rng, style)
        file_name = f'{split}/{idx:06d}.png'
        ok = cv2.imwrite(osp.join(out_dir, 'images', file_name),
                         cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f'could not write {osp.join(img_dir, file_name)}')
        records.append(
            dict(file_name=file_name, id=idx + 1, objects=objects,
                 captions=captions))
        if progress is not None:
            progress(idx + 1, num_images)
    return records


def _coco_images_annotations(
        records: List[Dict], img_size: int,
        items: Callable[[Dict], Iterable[Dict]]) -> Tuple[List, List]:
    """COCO ``images`` (one per record) and ``annotations`` (one per dict
    ``items(record)`` yields, with ``id`` from 1 and ``image_id``)."""
    images, annotations = [], []
    for rec in records:
        images.append(
            dict(id=rec['id'], file_name=rec['file_name'], height=img_size,
                 width=img_size))
        for item in items(rec):
            annotations.append(
                dict(id=len(annotations) + 1, image_id=rec['id'], **item))
    return images, annotations


def _coco_instances(records: List[Dict], img_size: int,
                    classes: Tuple[str, ...], description: str,
                    supercategory: str) -> Dict:
    images, annotations = _coco_images_annotations(
        records, img_size, lambda rec: (
            dict(category_id=classes.index(obj.shape) + 1, bbox=obj.bbox,
                 area=obj.area, iscrowd=0, segmentation=_rle(obj.mask))
            for obj in rec['objects']))
    categories = [
        dict(id=i + 1, name=name, supercategory=supercategory)
        for i, name in enumerate(classes)
    ]
    return dict(
        info=dict(description=description, version=str(GENERATOR_VERSION)),
        images=images, annotations=annotations, categories=categories)


def _coco_captions(records: List[Dict], img_size: int) -> Dict:
    images, annotations = _coco_images_annotations(
        records, img_size,
        lambda rec: (dict(caption=cap) for cap in rec['captions']))
    return dict(images=images, annotations=annotations)


def _karpathy(all_records: Dict[str, List[Dict]], name: str) -> Dict:
    images, imgid, sentid = [], 0, 0
    for split, records in all_records.items():
        for rec in records:
            sentences = []
            for cap in rec['captions']:
                sentences.append(
                    dict(raw=cap, tokens=caption_tokens(cap), imgid=imgid,
                         sentid=sentid))
                sentid += 1
            filepath, filename = rec['file_name'].split('/')
            images.append(
                dict(filepath=filepath, filename=filename, imgid=imgid,
                     split=split, cocoid=rec['id'],
                     sentids=[s['sentid'] for s in sentences],
                     sentences=sentences))
            imgid += 1
    return dict(images=images, dataset=name)


def _largest_shape(objects, style: ShapesStyle) -> int:
    """Classification label: the shape of the largest object (by its full
    size category; the largest category occurs once per scene)."""
    rank = style.size_rank
    return style.shapes.index(min(objects, key=lambda o: rank[o.size]).shape)


def _class_counts(records: List[Dict], style: ShapesStyle) -> Dict:
    """Per class (in label order): images of that classification label and
    object instances."""
    labels = [_largest_shape(rec['objects'], style) for rec in records]
    kinds = [obj.shape for rec in records for obj in rec['objects']]
    return dict(classification=[labels.count(i)
                                for i in range(len(style.shapes))],
                instances=[kinds.count(name) for name in style.shapes])


def write_scene_set(out_dir: str,
                    style: ShapesStyle,
                    draw: SceneDrawer,
                    num_train: int,
                    num_val: int,
                    seed: int,
                    img_size: int,
                    progress: Optional[Callable[[str, int, int],
                                                None]] = None,
                    description: str = 'mmupv2 shapes benchmark',
                    supercategory: str = 'shape',
                    dataset_name: str = 'shapes',
                    meta: Optional[Dict] = None) -> Dict:
    """Draw every image with ``draw`` and write the whole set into
    ``out_dir`` (see module docstring).

    Args:
        out_dir: output folder; created if missing, files overwritten.
        style: the set's classes and words (captions, labels).
        draw: the scene drawer, called as ``draw(rng, img_size,
            style=style)`` with one generator per (seed, split, image).
        num_train / num_val: number of images per split.
        seed: fixes every random choice.
        img_size: image side in pixels.
        progress: called as ``progress(split, done, total)`` after each image.
        description / supercategory: of the COCO files.
        dataset_name: the ``dataset`` of the Karpathy file (which is
            ``karpathy_shapes.json`` whatever the set, the name the configs
            read).
        meta: what ``meta.json`` holds besides the version, arguments and
            the per-split ``class_counts``.

    Returns:
        dict: the content of ``meta.json``.
    """
    for sub in ('annotations', 'classification', 'text'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    counts = dict(train=num_train, val=num_val)
    all_records = {}
    for split in SPLITS:
        cb = None if progress is None else (
            lambda done, total, split=split: progress(split, done, total))
        records = generate_split(out_dir, split, counts[split], seed,
                                 img_size, cb, style, draw)
        all_records[split] = records
        _dump_json(
            _coco_instances(records, img_size, style.shapes, description,
                            supercategory),
            osp.join(out_dir, 'annotations', f'instances_{split}.json'))
        _dump_json(
            _coco_captions(records, img_size),
            osp.join(out_dir, 'annotations', f'captions_{split}.json'))
        with open(osp.join(out_dir, 'annotations', f'pairs_{split}.jsonl'),
                  'w', encoding='utf-8') as f:
            for rec in records:
                for cap in rec['captions']:
                    f.write(json.dumps(
                        dict(image=f"images/{rec['file_name']}",
                             caption=cap)) + '\n')
        with open(osp.join(out_dir, 'classification', f'{split}.txt'),
                  'w') as f:
            for rec in records:
                f.write(f"{rec['file_name']} "
                        f"{_largest_shape(rec['objects'], style)}\n")
        with open(osp.join(out_dir, 'text', f'{split}.txt'), 'w') as f:
            for rec in records:
                for cap in rec['captions']:
                    f.write(cap + '\n')
    with open(osp.join(out_dir, 'classification', 'classes.txt'), 'w') as f:
        f.write('\n'.join(style.shapes) + '\n')
    _dump_json(
        _karpathy(all_records, dataset_name),
        osp.join(out_dir, 'annotations', 'karpathy_shapes.json'))
    train_tokenizer(
        osp.join(out_dir, 'text', 'train.txt'), osp.join(out_dir, 'tokenizer'))
    meta = dict(generator_version=GENERATOR_VERSION, seed=seed,
                num_train=num_train, num_val=num_val, img_size=img_size,
                classes=list(style.shapes), **(meta or {}),
                class_counts={
                    split: _class_counts(records, style)
                    for split, records in all_records.items()
                })
    _dump_json(meta, osp.join(out_dir, 'meta.json'))
    return meta


def generate_shapes(out_dir: str,
                    num_train: int = 2000,
                    num_val: int = 200,
                    seed: int = 0,
                    img_size: int = 160,
                    progress: Optional[Callable[[str, int, int],
                                                None]] = None,
                    style: str = 'shapes') -> Dict:
    """Generate the whole benchmark into ``out_dir`` (see module docstring).

    Args:
        out_dir: output folder; created if missing, files overwritten.
        num_train / num_val: number of images per split.
        seed: fixes every random choice.
        img_size: image side in pixels (>= 64).
        progress: called as ``progress(split, done, total)`` after each image.
        style: ``'shapes'`` (the built-in benchmark), ``'other'`` (other
            classes, colours and words) or ``'close'`` (visually close
            classes, textured), see :mod:`.styles`.

    Returns:
        dict: the content of ``meta.json``.
    """
    style_def = get_style(style)
    if img_size < 64:
        raise ValueError(f'img_size must be >= 64, got {img_size}')
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train} and {num_val}')
    return write_scene_set(out_dir, style_def, draw_scene, num_train,
                           num_val, seed, img_size, progress,
                           meta=dict(style=style))
