# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""docs/custom_dataset.md, done as a user would: a data set with other
class names and other words, written in the standard formats (COCO
instances with polygons, an ImageNet-style list, a Karpathy JSON with a
'test' split, text lines) under other file names; the demo config with
only its data block changed; a short training run and the evaluation of
every task."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image, ImageDraw

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                  'upv2_lite0-minilm_shapes.py')
CLASSES = ('lemon', 'brick', 'kite')
COLOURS = {'golden': (230, 190, 30), 'crimson': (170, 20, 40),
           'teal': (0, 128, 128)}


def _polygon(kind: str, cx: float, cy: float, r: float) -> list:
    if kind == 'lemon':  # an ellipse
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        pts = np.stack([cx + r * np.cos(t), cy + 0.6 * r * np.sin(t)], 1)
    elif kind == 'brick':  # a wide rectangle
        pts = np.array([[cx - r, cy - r / 2], [cx + r, cy - r / 2],
                        [cx + r, cy + r / 2], [cx - r, cy + r / 2]])
    else:  # a kite (rhombus, taller than wide)
        pts = np.array([[cx, cy - r], [cx + r / 2, cy], [cx, cy + r],
                        [cx - r / 2, cy]])
    return [float(v) for v in pts.reshape(-1)]


def write_custom_dataset(root: str, num_train: int = 8,
                         num_val: int = 4) -> None:
    """Images of 1-2 objects of CLASSES in 120 x 100 px, in the standard
    formats under non-shapes file names."""
    rng = np.random.default_rng(0)
    files = dict(coco={}, cls={}, karpathy=[], text=[])
    imgid = 0
    for split, num in (('train', num_train), ('test', num_val)):
        coco = dict(images=[], annotations=[], categories=[
            dict(id=i + 10, name=c) for i, c in enumerate(CLASSES)])
        lines = []
        for i in range(num):
            img = Image.new('RGB', (120, 100), (90, 90, 90))
            draw = ImageDraw.Draw(img)
            names = []
            for k in range(1 + i % 2):
                label = int(rng.integers(len(CLASSES)))
                colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
                cx, cy = 30 + 60 * k, 50
                poly = _polygon(CLASSES[label], cx, cy, 22)
                draw.polygon(poly, fill=COLOURS[colour])
                xs, ys = poly[0::2], poly[1::2]
                x0, y0 = min(xs), min(ys)
                coco['annotations'].append(dict(
                    id=len(coco['annotations']) + 1, image_id=imgid,
                    category_id=label + 10, segmentation=[poly], iscrowd=0,
                    bbox=[x0, y0, max(xs) - x0, max(ys) - y0],
                    area=(max(xs) - x0) * (max(ys) - y0)))
                names.append((colour, CLASSES[label]))
            name = f'{split}_{i}.jpg'
            img.save(osp.join(root, 'pics', name))
            coco['images'].append(
                dict(id=imgid, file_name=name, width=120, height=100))
            lines.append(f'{name} {CLASSES.index(names[0][1])}')
            sentences = [
                ' with '.join(f'one {c} {n}' for c, n in names),
                'a picture showing ' + ' beside '.join(n for _, n in names),
            ]
            files['karpathy'].append(dict(
                filename=name, imgid=imgid, split=split,
                sentences=[dict(raw=s, sentid=2 * imgid + j)
                           for j, s in enumerate(sentences)]))
            if split == 'train':
                files['text'] += sentences
            imgid += 1
        with open(osp.join(root, 'ann', f'objects_{split}.json'), 'w') as f:
            json.dump(coco, f)
        with open(osp.join(root, 'ann', f'labels_{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    with open(osp.join(root, 'ann', 'captions.json'), 'w') as f:
        json.dump(dict(images=files['karpathy']), f)
    with open(osp.join(root, 'corpus.txt'), 'w') as f:
        f.write('\n'.join(files['text']) + '\n')


#: the data block of the demo config, as docs/custom_dataset.md tells a
#: user to change it
DATA_BLOCK = dict(
    data_root=None,  # the test's folder
    classes=CLASSES,
    img_prefix='pics/',
    coco_train='ann/objects_train.json',
    coco_val='ann/objects_test.json',
    cls_train='ann/labels_train.txt',
    cls_val='ann/labels_test.txt',
    karpathy='ann/captions.json',
    karpathy_train_split='train',
    karpathy_val_split='test',
    text_train='corpus.txt',
)


@pytest.mark.timeout(900)
def test_demo_config_on_a_custom_dataset(tmp_path):
    from mmengine.runner import Runner
    root = tmp_path / 'my_set'
    for sub in ('pics', 'ann'):
        (root / sub).mkdir(parents=True)
    write_custom_dataset(str(root))

    # the copy lives elsewhere: the tool points its _base_ back at configs/
    cfg_file = tmp_path / 'my_set.py'
    block = dict(DATA_BLOCK, data_root=f'{root}/')
    subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'misc',
                                  'config_for_dataset.py'), CONFIG,
         '--out', str(cfg_file), '--set'] +
        [f'{name}={value!r}' for name, value in block.items()],
        check=True, capture_output=True, text=True)
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.classes == CLASSES and cfg.img_prefix == 'pics/'
    assert cfg.train_dataloader.classification.dataloader.dataset.data_root \
        == f'{root}/'
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_iters = 6
    for scheduler in cfg.param_scheduler:
        scheduler.begin, scheduler.end = min(scheduler.begin, 5), 6
    cfg.default_hooks.checkpoint.interval = 6
    cfg.custom_hooks[0]['cache_dir'] = str(tmp_path / 'vocab')

    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    # the label space and the vocabulary targets follow the data
    assert model.tasks['detection'].class_texts(False) == list(CLASSES)
    tok = model.text_encoder.tokenizer
    targets = set(model.vocabulary_token_ids().tolist())
    for word in ('lemon', 'crimson', 'beside', 'picture'):
        assert set(tok(word, add_special_tokens=False)['input_ids']) <= (
            targets), word
    assert not set(tok('triangle', add_special_tokens=False)['input_ids']
                   ) <= targets  # a shapes word that is not in this data

    metrics = runner.test()
    for key in ('classification/classification/top1',
                'detection/detection/bbox_mAP',
                'instance_segmentation/instance_segmentation/segm_mAP',
                'captioning/captioning/CIDEr',
                'retrieval/retrieval/i2t_R@1', 'retrieval/retrieval/t2i_R@1'):
        assert key in metrics, sorted(metrics)
        assert np.isfinite(metrics[key])
    # detections are in the original 120 x 100 image's pixels
    with open(root / 'ann' / 'objects_test.json') as f:
        assert {(i['width'], i['height']) for i in json.load(f)['images']
                } == {(120, 100)}
