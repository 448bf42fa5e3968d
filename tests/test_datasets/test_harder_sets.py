# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The harder sets in the benchmark's formats: ``--style close`` (visually
close, textured shape classes) and ``--style photos`` (items cut from the
photographs of the scikit-image wheel). Each is loaded by the project's own
data sets, with its per-class counts checked against the files."""
import filecmp
import json
import os.path as osp
from collections import Counter

import numpy as np
import pytest

from mmupv2.datasets import (
    KarpathyCaptionDataset,
    KarpathyRetrievalDataset,
    TextLinesDataset,
    UPv2ClassificationDataset,
    UPv2CocoDataset,
)
from mmupv2.datasets.shapes import (
    CLOSE_STYLE,
    PHOTO_SOURCES,
    PHOTO_STYLE,
    draw_photo_scene,
    draw_scene,
    generate_photo_scenes,
    generate_shapes,
    make_captions,
)
from mmupv2.datasets.shapes.captions import caption_tokens
from mmupv2.datasets.shapes.photo_scene import BACKGROUNDS, load_photo

NUM_TRAIN, NUM_VAL = 40, 10
_PACK = dict(type='PackUPv2Inputs')
_LOAD = dict(type='LoadImageFromFile')


def _generate(style: str, out: str, seed: int = 1) -> dict:
    if style == 'photos':
        return generate_photo_scenes(out, NUM_TRAIN, NUM_VAL, seed=seed,
                                     img_size=128)
    return generate_shapes(out, NUM_TRAIN, NUM_VAL, seed=seed, img_size=96,
                           style=style)


@pytest.fixture(scope='module', params=['close', 'photos'])
def scene_set(request, tmp_path_factory):
    root = str(tmp_path_factory.mktemp(request.param))
    return request.param, root, _generate(request.param, root)


def _datasets(root: str, classes, split: str) -> dict:
    coco = dict(
        data_root=root, ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img='images/'), metainfo=dict(classes=classes),
        test_mode=split == 'val', pipeline=[
            _LOAD,
            dict(type='mmdet.LoadAnnotations', with_bbox=True,
                 with_mask=True), _PACK
        ])
    karpathy = dict(
        data_root=root, ann_file='annotations/karpathy_shapes.json',
        data_prefix=dict(img_path='images'), split=split,
        pipeline=[_LOAD, _PACK])
    return dict(
        classification=UPv2ClassificationDataset(
            data_root=root, ann_file=f'classification/{split}.txt',
            data_prefix='images', pipeline=[_LOAD, _PACK],
            classes=osp.join(root, 'classification', 'classes.txt')),
        detection=UPv2CocoDataset(task='detection', **coco),
        captioning=KarpathyCaptionDataset(**karpathy),
        retrieval=KarpathyRetrievalDataset(test_mode=split == 'val',
                                           **karpathy),
        mlm=TextLinesDataset(data_root=root, ann_file=f'text/{split}.txt',
                             pipeline=[_PACK]))


def test_the_projects_data_sets_load_it_with_its_class_counts(scene_set):
    style, root, meta = scene_set
    classes = PHOTO_STYLE.shapes if style == 'photos' else CLOSE_STYLE.shapes
    assert meta['classes'] == list(classes) and len(classes) == 10
    assert meta['style'] == style
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        counts = meta['class_counts'][split]
        ds = _datasets(root, classes, split)
        # classification: one label per image, counted per class
        labels = Counter(
            int(ds['classification'].get_data_info(i)['gt_label'])
            for i in range(len(ds['classification'])))
        assert [labels[i] for i in range(10)] == counts['classification']
        assert sum(counts['classification']) == num
        # detection / segmentation: the instances of each class
        det = ds['detection']
        instances = Counter(
            int(inst['bbox_label']) for i in range(len(det))
            for inst in det.get_data_info(i)['instances'])
        assert [instances[i] for i in range(10)] == counts['instances']
        packed = det[0]['data_samples'].gt_instances
        assert len(packed) == len(det.get_data_info(0)['instances']) >= 1
        assert packed.masks.masks.any(axis=(1, 2)).all()
        # captions / retrieval / MLM: three captions an image (retrieval
        # trains on pairs, tests on images)
        assert len(ds['captioning']) == 3 * num
        assert len(ds['retrieval']) == (num if split == 'val' else 3 * num)
        assert len(ds['mlm']) == 3 * num
    # with this seed every class has instances in the training split, and
    # the labels spread over the classes
    train = meta['class_counts']['train']
    assert min(train['instances']) >= 1
    assert sum(n > 0 for n in train['classification']) >= 8


def test_same_seed_same_files(scene_set, tmp_path):
    style, root, _ = scene_set
    again = str(tmp_path / 'again')
    _generate(style, again)
    for name in ('images/train/000000.png', 'images/val/000009.png',
                 'annotations/instances_train.json',
                 'annotations/karpathy_shapes.json', 'meta.json'):
        assert filecmp.cmp(osp.join(root, name), osp.join(again, name),
                           shallow=False), name
    other = str(tmp_path / 'other')
    _generate(style, other, seed=2)
    assert not filecmp.cmp(osp.join(root, 'images/train/000000.png'),
                           osp.join(other, 'images/train/000000.png'),
                           shallow=False)


def test_close_style_textures_and_words():
    """Its objects are filled with textures (not one flat colour), whatever
    their class; its captions use the benchmark's words and its classes."""
    rng = np.random.default_rng(4)
    spread, seen = [], set()
    for _ in range(40):
        img, objects = draw_scene(rng, 96, style=CLOSE_STYLE)
        for obj in objects:
            seen.add(obj.shape)
            if obj.mask.sum() > 60:
                spread.append(img[obj.mask].std(axis=0).mean())
        words = {w for c in make_captions(objects, rng, CLOSE_STYLE)
                 for w in caption_tokens(c)}
        assert {o.shape for o in objects} <= words
    assert seen == set(CLOSE_STYLE.shapes)
    # flat fills have only the sensor noise (std 8); textured ones more
    assert sum(s > 14 for s in spread) > len(spread) / 2


def test_photo_items_are_crops_of_their_photographs():
    """Each class's item shows its own photograph: the mean colour of
    untinted crops is that of the class's region, and a scene's items
    differ from the background they are pasted on."""
    for file in {s.file for s in PHOTO_SOURCES.values()} | set(BACKGROUNDS):
        photo = load_photo(file)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.std() > 10
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(30):
        img, objects = draw_photo_scene(rng, 128)
        assert img.shape == (128, 128, 3) and img.dtype == np.uint8
        for obj in objects:
            kinds.add(obj.shape)
            x, y, w, h = obj.full_bbox
            bx, by, bw, bh = obj.bbox
            assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= (
                y + h)
            assert obj.position in sum(PHOTO_STYLE.positions, ())
        captions = make_captions(objects, rng, PHOTO_STYLE)
        assert captions[2].split(':')[0].endswith(
            ('item', 'items'))  # "two items: ..."
    assert kinds == set(PHOTO_STYLE.shapes)


def test_photo_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='img_size must be >= 96'):
        generate_photo_scenes(str(tmp_path), 2, 2, img_size=64)
    with pytest.raises(ValueError, match='num_train'):
        generate_photo_scenes(str(tmp_path), 0, 2)
    assert not (tmp_path / 'meta.json').exists()


def test_meta_json_is_what_was_returned(scene_set):
    _, root, meta = scene_set
    assert json.load(open(osp.join(root, 'meta.json'))) == meta
