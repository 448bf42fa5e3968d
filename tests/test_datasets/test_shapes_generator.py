# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import filecmp
import json
import os
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from mmupv2.datasets.shapes import (
    COLOURS,
    OTHER_STYLE,
    SHAPES,
    SHAPES_STYLE,
    SIZES,
    draw_scene,
    generate_shapes,
    make_captions,
)
from mmupv2.datasets.shapes.captions import caption_tokens
from mmupv2.datasets.shapes.scene import DRAWABLE_SHAPES, shape_mask


def _all_files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def test_same_seed_byte_identical(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        generate_shapes(out, num_train=6, num_val=3, seed=seed, img_size=64)
    files = _all_files(a)
    assert files == _all_files(b)
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)
    _, mismatch, _ = filecmp.cmpfiles(a, c, files, shallow=False)
    assert 'images/train/000000.png' in mismatch  # the seed matters


def test_vocabulary_is_rich_enough():
    assert len(SHAPES) >= 6 and len(COLOURS) >= 6 and len(SIZES) == 3


def test_scene_objects_and_background():
    rng = np.random.default_rng(0)
    counts, shapes_seen = set(), set()
    for _ in range(40):
        img, objects = draw_scene(rng, 96)
        assert img.shape == (96, 96, 3) and img.dtype == np.uint8
        assert 1 <= len(objects) <= 4
        counts.add(len(objects))
        sizes = [o.size for o in objects]
        largest = max(sizes, key=list(SIZES).index)
        assert sizes.count(largest) == 1  # classification label well-defined
        union = np.zeros((96, 96), bool)
        for obj in objects:
            shapes_seen.add(obj.shape)
            assert obj.mask.any() and not (union & obj.mask).any()
            union |= obj.mask
            x, y, w, h = obj.bbox
            ys, xs = np.nonzero(obj.mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (
                x, y, x + w, y + h)
        # textured, noisy background: not a flat colour
        assert img[~union].std(axis=0).mean() > 5
    assert counts == {1, 2, 3, 4}
    assert shapes_seen == set(SHAPES)


def test_formats(shapes_root):
    # COCO instances, read by pycocotools; RLE masks agree with the boxes
    coco = COCO(osp.join(shapes_root, 'annotations', 'instances_train.json'))
    assert len(coco.getImgIds()) == 12
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPES)
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        assert mask.sum() == ann['area'] > 0
        assert list(mask_util.toBbox(ann['segmentation'])) == ann['bbox']
        img = coco.loadImgs(ann['image_id'])[0]
        assert cv2.imread(
            osp.join(shapes_root, 'images', img['file_name'])).shape == (96,
                                                                         96, 3)
    # classification list + classes; label = shape of the largest object
    classes = open(osp.join(shapes_root, 'classification',
                            'classes.txt')).read().split()
    assert classes == list(SHAPES)
    lines = open(osp.join(shapes_root, 'classification',
                          'train.txt')).read().splitlines()
    assert len(lines) == 12
    agree = 0
    for line in lines:
        path, label = line.split()
        img_id = int(osp.splitext(osp.basename(path))[0]) + 1
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        assert int(label) in {a['category_id'] - 1 for a in anns}
        largest = max(anns, key=lambda a: a['area'])
        agree += int(label) == largest['category_id'] - 1
    # the largest size category is nearly always the largest visible area
    assert agree >= 0.75 * len(lines)
    # Karpathy file: >= 2 different captions per image, telling images apart
    karpathy = json.load(
        open(osp.join(shapes_root, 'annotations', 'karpathy_shapes.json')))
    splits = [img['split'] for img in karpathy['images']]
    assert splits.count('train') == 12 and splits.count('val') == 6
    caption_sets = set()
    for img in karpathy['images']:
        raws = [s['raw'] for s in img['sentences']]
        assert len(set(raws)) >= 2
        caption_sets.add(tuple(raws))
    assert len(caption_sets) == len(karpathy['images'])
    # COCO-caption ground truth, JSONL pairs, MLM text
    caps = json.load(
        open(osp.join(shapes_root, 'annotations', 'captions_val.json')))
    assert len(caps['images']) == 6 and len(caps['annotations']) >= 12
    pairs = open(osp.join(shapes_root, 'annotations',
                          'pairs_train.jsonl')).read().splitlines()
    assert all(osp.exists(osp.join(shapes_root, json.loads(p)['image']))
               for p in pairs)
    text = open(osp.join(shapes_root, 'text', 'train.txt')).read()
    assert len(text.splitlines()) == len(pairs)


def test_tokenizer_loads_with_auto_tokenizer(shapes_root):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(osp.join(shapes_root, 'tokenizer'))
    assert type(tok).__name__ == 'RobertaTokenizerFast'
    assert tok.mask_token == '<mask>' and tok.pad_token_id == 1
    ids = tok('a large red star and a small blue ring')['input_ids']
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == \
        'a large red star and a small blue ring'
    assert tok.unk_token_id not in ids


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='img_size'):
        generate_shapes(str(tmp_path), 2, 2, img_size=32)
    with pytest.raises(ValueError, match='num_train'):
        generate_shapes(str(tmp_path), 0, 2)
    with pytest.raises(ValueError, match=r"style 'circles'.*'other'"):
        generate_shapes(str(tmp_path), 2, 2, style='circles')


@pytest.mark.parametrize('shape', DRAWABLE_SHAPES)
def test_every_shape_draws_a_solid_object(shape):
    full = shape_mask(shape, 48, 48, 16, 0.3, 96)
    ys, xs = np.nonzero(full)
    # a solid object of about the circumradius, around the centre
    assert 0.25 * np.pi * 16**2 < full.sum() < 1.3 * np.pi * 16**2
    assert abs(xs.mean() - 48) < 8 and abs(ys.mean() - 48) < 8
    assert xs.max() - xs.min() <= 2 * 1.15 * 16 + 2


def test_unknown_shape_names_the_drawable_ones():
    with pytest.raises(ValueError, match=r"'blob'.*'trapezoid'"):
        shape_mask('blob', 48, 48, 16, 0.0, 96)


def test_other_style_uses_only_its_own_words():
    """The carry-over set: other classes, colours, size / position / count
    words; none of the built-in benchmark's shape, colour or size words."""
    rng = np.random.default_rng(1)
    own = set(OTHER_STYLE.shapes) | set(OTHER_STYLE.colours) | set(
        OTHER_STYLE.sizes)
    builtin = set(SHAPES_STYLE.shapes) | set(SHAPES_STYLE.colours) | set(
        SHAPES_STYLE.sizes)
    seen = set()
    for _ in range(60):
        img, objects = draw_scene(rng, 96, style=OTHER_STYLE)
        sizes = [o.size for o in objects]
        assert sizes.count(max(sizes, key=list(OTHER_STYLE.sizes).index)) == 1
        for obj in objects:
            assert obj.shape in OTHER_STYLE.shapes
            assert obj.colour in OTHER_STYLE.colours
            seen.add(obj.shape)
        captions = make_captions(objects, rng, OTHER_STYLE)
        words = {w for c in captions for w in caption_tokens(c)}
        assert not words & builtin, words & builtin
        assert {o.shape for o in objects} <= words and words & own
    assert seen == set(OTHER_STYLE.shapes)


def test_other_style_formats(tmp_path):
    root = str(tmp_path / 'other')
    meta = generate_shapes(root, num_train=8, num_val=2, seed=2, img_size=64,
                           style='other')
    assert meta['classes'] == list(OTHER_STYLE.shapes)
    coco = COCO(osp.join(root, 'annotations', 'instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
        OTHER_STYLE.shapes)
    classes = open(osp.join(root, 'classification',
                            'classes.txt')).read().split()
    assert classes == list(OTHER_STYLE.shapes)
    for line in open(osp.join(root, 'classification', 'train.txt')):
        path, label = line.split()
        img_id = int(osp.splitext(osp.basename(path))[0]) + 1
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        assert int(label) in {a['category_id'] - 1 for a in anns}
