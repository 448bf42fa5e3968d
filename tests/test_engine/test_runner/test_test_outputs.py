# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""add_dump_metrics on an evaluator fed with predictions of known quality
(ground truth, partly shifted and mislabelled): the dumps, scored again
offline, give the online metrics -- non-trivial values, unlike a random
model's (tests/test_tools/test_test_outputs.py runs the real tool)."""
import os.path as osp
from types import SimpleNamespace

import mmengine
import numpy as np
import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmengine.evaluator import Evaluator
from mmpretrain.evaluation import Accuracy
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmupv2.engine.runner.test_outputs import add_dump_metrics
from mmupv2.evaluation.metrics import ImageTextRetrievalMetric

CLASSES = ('circle', 'square', 'triangle', 'diamond', 'star', 'cross',
           'ring')


def _loop(name: str, task: str, evaluator: Evaluator, dataset=None):
    """What add_dump_metrics reads of a MultiTaskTestLoop."""
    return SimpleNamespace(
        evaluators={name: evaluator}, tasks={name: task},
        dataloaders={name: SimpleNamespace(dataset=dataset)})


def _coco_samples(coco: COCO, seed: int = 0) -> list:
    """Per image: its ground truth with every 3rd box shifted by half its
    width, every 4th label wrong, random scores, GT masks as RLE."""
    rng = np.random.default_rng(seed)
    cat_to_label = {c: i for i, c in enumerate(coco.getCatIds(
        catNms=list(CLASSES)))}
    samples = []
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        boxes, labels, masks = [], [], []
        for i, ann in enumerate(anns):
            x, y, w, h = ann['bbox']
            if i % 3 == 0:
                x += w / 2
            boxes.append([x, y, x + w, y + h])
            label = cat_to_label[ann['category_id']]
            labels.append((label + 1) % len(CLASSES) if i % 4 == 0 else label)
            masks.append(coco.annToRLE(ann))
        samples.append(
            dict(img_id=img_id,
                 ori_shape=(info['height'], info['width']),
                 pred_instances=dict(
                     bboxes=torch.tensor(boxes, dtype=torch.float32).view(
                         -1, 4),
                     scores=torch.from_numpy(
                         rng.uniform(0.1, 1.0, len(anns))).float(),
                     labels=torch.tensor(labels, dtype=torch.long),
                     masks=masks)))
    return samples


def _coco_stats(coco: COCO, results: str, iou_type: str) -> list:
    """COCOeval with mmdet CocoMetric's settings."""
    predictions = mmengine.load(results)
    if iou_type == 'segm':
        for p in predictions:
            p.pop('bbox')
    coco_eval = COCOeval(coco, coco.loadRes(predictions), iou_type)
    coco_eval.params.catIds = coco.getCatIds(catNms=list(CLASSES))
    coco_eval.params.imgIds = coco.getImgIds()
    coco_eval.params.maxDets = [100, 300, 1000]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats[:6].tolist()


def test_coco_dump_gives_the_online_metrics(shapes_root, tmp_path):
    ann_file = osp.join(shapes_root, 'annotations', 'instances_val.json')
    evaluator = Evaluator(
        CocoMetric(ann_file=ann_file, metric=['bbox', 'segm']))
    evaluator.dataset_meta = dict(classes=CLASSES)
    out = str(tmp_path / 'out' / 'preds.pkl')
    files = add_dump_metrics(
        _loop('seg', 'instance_segmentation', evaluator,
              SimpleNamespace(ann_file=ann_file)), out)
    assert files == {
        'seg': [str(tmp_path / 'out' / f'preds.seg.{t}.json')
                for t in ('bbox', 'segm')]
    }
    coco = COCO(ann_file)
    samples = _coco_samples(coco)
    evaluator.process(samples[:2])
    evaluator.process(samples[2:])
    online = evaluator.evaluate(len(samples))
    for iou_type, path in zip(('bbox', 'segm'), files['seg']):
        stats = _coco_stats(coco, path, iou_type)
        keys = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
        for key, value in zip(keys, stats):
            assert round(value, 3) == pytest.approx(
                online[f'coco/{iou_type}_{key}'], abs=1e-6)
        assert 0.2 < stats[0] < 0.95  # neither empty nor perfect


def test_classification_and_retrieval_dumps(tmp_path):
    torch.manual_seed(0)
    scores = torch.rand(10, 5).softmax(-1)
    labels = torch.randint(0, 5, (10, ))
    evaluator = Evaluator(Accuracy(topk=(1, 2)))
    evaluator.dataset_meta = dict(classes=list('abcde'))
    add_dump_metrics(_loop('cls', 'classification', evaluator),
                     str(tmp_path / 'dump') + '/')
    evaluator.process([
        dict(pred_score=s, pred_label=s.argmax().view(1), gt_label=g.view(1),
             img_path=f'{i}.png')
        for i, (s, g) in enumerate(zip(scores, labels))
    ])
    online = evaluator.evaluate(10)
    dump = mmengine.load(str(tmp_path / 'dump' / 'cls.pkl'))
    assert dump['classes'] == list('abcde')
    assert dump['img_path'][3] == '3.png'
    top = Accuracy.calculate(
        torch.from_numpy(dump['pred_score']),
        torch.from_numpy(dump['gt_label']), topk=(1, 2))
    assert float(top[0][0]) == pytest.approx(online['accuracy/top1'])
    assert float(top[1][0]) == pytest.approx(online['accuracy/top2'])
    assert 0 < online['accuracy/top2'] < 100

    # retrieval: 6 images of 2 texts each, fed in a shuffled order
    image_feats = torch.randn(6, 8)
    text_feats = image_feats.repeat_interleave(2, 0) + torch.randn(12, 8)
    evaluator = Evaluator(ImageTextRetrievalMetric(topk=(1, 5)))
    add_dump_metrics(_loop('ret', 'retrieval', evaluator),
                     str(tmp_path / 'preds.json'))
    order = [3, 0, 5, 1, 4, 2]
    evaluator.process([
        dict(image_id=i, image_feat=image_feats[i],
             text_feat=text_feats[2 * i:2 * i + 2],
             gt_caption=[f'text {2 * i}', f'text {2 * i + 1}'])
        for i in order
    ])
    online = evaluator.evaluate(6)
    dump = mmengine.load(str(tmp_path / 'preds.ret.pkl'))
    assert dump['image_ids'].tolist() == list(range(6))
    assert dump['texts'][:3] == ['text 0', 'text 1', 'text 2']
    recalls = ImageTextRetrievalMetric.recalls_from_similarity(
        dump['similarity'], dump['text_to_image'], (1, 5))
    assert recalls == pytest.approx(
        {k.split('/')[-1]: v for k, v in online.items()})
    assert 0 < online['retrieval/i2t_R@1'] < 100
