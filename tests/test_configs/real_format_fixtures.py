# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Tiny copies of the real data sets' folder layouts and annotation files,
written from generated shapes images, for the data set config tests."""
import json
import os
import os.path as osp
import shutil

from mmdet.datasets import CocoDataset

from mmupv2.datasets.shapes import generate_shapes

#: COCO 2017's category ids (not contiguous) for its 80 class names.
COCO_IDS = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
    43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
    62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90
]


def write_real_layouts(root: str) -> None:
    """Write data/{imagenet,coco,flickr30k,cc3m,books_wiki} under ``root``."""
    shapes = osp.join(root, '_shapes')
    generate_shapes(shapes, num_train=4, num_val=3, seed=5, img_size=64)
    images = sorted(os.listdir(osp.join(shapes, 'images', 'train')))
    src = [osp.join(shapes, 'images', 'train', f) for f in images]

    def copy(dst_dir, names):
        os.makedirs(dst_dir, exist_ok=True)
        for s, n in zip(src, names):
            shutil.copy(s, osp.join(dst_dir, n))

    # ImageNet: train/<wnid>/<file>, meta/train.txt "<wnid>/<file> label"
    inet = osp.join(root, 'imagenet')
    lines = []
    for i, wnid in enumerate(['n01440764', 'n01443537']):
        names = [f'{wnid}_{k}.JPEG' for k in range(2)]
        copy(osp.join(inet, 'train', wnid), names)
        lines += [f'{wnid}/{n} {i}' for n in names]
    copy(osp.join(inet, 'val'), [f'ILSVRC2012_val_{k:08d}.JPEG'
                                 for k in range(1, 3)])
    os.makedirs(osp.join(inet, 'meta'), exist_ok=True)
    with open(osp.join(inet, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(inet, 'meta', 'val.txt'), 'w') as f:
        f.write('ILSVRC2012_val_00000001.JPEG 65\n'
                'ILSVRC2012_val_00000002.JPEG 970\n')

    # COCO 2017 instances with COCO's 80 categories and ids
    coco = osp.join(root, 'coco')
    shapes_ann = json.load(
        open(osp.join(shapes, 'annotations', 'instances_train.json')))
    cats = [dict(id=i, name=n, supercategory='thing')
            for i, n in zip(COCO_IDS, CocoDataset.METAINFO['classes'])]
    for split in ('train2017', 'val2017'):
        copy(osp.join(coco, split), [f'{k:012d}.jpg' for k in range(1, 5)])
        ann = dict(images=[], annotations=[], categories=cats)
        for img in shapes_ann['images']:
            ann['images'].append(dict(img, file_name=f"{img['id']:012d}.jpg"))
        for a in shapes_ann['annotations']:
            ann['annotations'].append(
                dict(a, category_id=COCO_IDS[a['category_id']]))
        os.makedirs(osp.join(coco, 'annotations'), exist_ok=True)
        with open(osp.join(coco, 'annotations',
                           f'instances_{split}.json'), 'w') as f:
            json.dump(ann, f)

    # COCO Karpathy split (filepath + filename) and Flickr30k (filename)
    karpathy = json.load(
        open(osp.join(shapes, 'annotations', 'karpathy_shapes.json')))
    kimgs = [i for i in karpathy['images'] if i['split'] == 'train']
    copy(osp.join(coco, 'val2014'),
         [f'COCO_val2014_{k:012d}.jpg' for k in range(4)])
    for k, (img, split) in enumerate(
            zip(kimgs, ('train', 'restval', 'test', 'test'))):
        img.update(filepath='val2014', split=split, cocoid=1000 + k,
                   filename=f'COCO_val2014_{k:012d}.jpg')
    with open(osp.join(coco, 'annotations', 'dataset_coco.json'), 'w') as f:
        json.dump(dict(images=kimgs, dataset='coco'), f)
    flickr = osp.join(root, 'flickr30k')
    copy(osp.join(flickr, 'flickr30k-images'),
         [f'{1000092795 + k}.jpg' for k in range(4)])
    fimgs = []
    for k, img in enumerate(kimgs):
        img = {key: v for key, v in img.items()
               if key not in ('filepath', 'cocoid')}
        fimgs.append(dict(img, filename=f'{1000092795 + k}.jpg',
                          split='test'))
    with open(osp.join(flickr, 'dataset_flickr30k.json'), 'w') as f:
        json.dump(dict(images=fimgs, dataset='flickr30k'), f)

    # image-text pairs (JSONL) and the MLM text corpus
    for name in ('cc3m', 'cc12m', 'sbu', 'vg', 'yfcc'):
        pairs = osp.join(root, name)
        copy(osp.join(pairs, 'images'), [f'{k:09d}.jpg' for k in range(4)])
        os.makedirs(osp.join(pairs, 'annotations'), exist_ok=True)
        with open(osp.join(pairs, 'annotations', 'train.jsonl'), 'w') as f:
            for k, img in enumerate(kimgs):
                f.write(json.dumps(dict(
                    image=f'images/{k:09d}.jpg',
                    caption=img['sentences'][0]['raw'])) + '\n')
    os.makedirs(osp.join(root, 'books_wiki'), exist_ok=True)
    shutil.copy(osp.join(shapes, 'text', 'train.txt'),
                osp.join(root, 'books_wiki', 'train.txt'))
