# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Metrics on hand-made predictions with known answers."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmupv2.datasets.shapes import SHAPES
from mmupv2.evaluation import (
    CaptionMetric,
    ImageTextRetrievalMetric,
    caption_scores,
)
from mmupv2.registry import METRICS
from mmupv2.structures import UPv2DataSample


def test_accuracy_by_registry_name():
    """mmpretrain's Accuracy reads UPv2DataSample's fields; the task prefix
    is set in the config."""
    metric = METRICS.build(
        dict(type='mmpretrain.Accuracy', topk=(1, 2),
             prefix='classification'))
    evaluator = Evaluator(metric)
    samples = []
    for label, scores in ((0, [0.7, 0.2, 0.1]), (1, [0.5, 0.4, 0.1]),
                          (2, [0.1, 0.2, 0.7]), (2, [0.3, 0.6, 0.1])):
        s = UPv2DataSample().set_task('classification').set_gt_label(label)
        samples.append(s.set_pred_score(torch.tensor(scores)))
    evaluator.process(samples)
    metrics = evaluator.evaluate(4)
    assert metrics['classification/top1'] == pytest.approx(50.0)
    assert metrics['classification/top2'] == pytest.approx(75.0)


def test_coco_metric_perfect_and_partial(shapes_root):
    """mmdet's CocoMetric on UPv2DataSamples: ground truth as prediction
    gives 100 mAP; dropping half of the predictions gives pycocotools'
    number computed here."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    ann_file = osp.join(shapes_root, 'annotations', 'instances_val.json')
    coco = COCO(ann_file)

    def predictions(keep_every: int):
        samples = []
        for img_id in coco.getImgIds():
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
            anns = anns[::keep_every]
            s = UPv2DataSample(metainfo=dict(img_id=img_id,
                                             ori_shape=(96, 96)))
            s.set_task('instance_segmentation')
            boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                      a['bbox'][1] + a['bbox'][3]] for a in anns]
            s.pred_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float).view(-1, 4),
                labels=torch.tensor(
                    [a['category_id'] - 1 for a in anns], dtype=torch.long),
                scores=torch.ones(len(anns)),
                masks=torch.from_numpy(
                    np.stack([coco.annToMask(a) for a in anns])
                    if anns else np.zeros((0, 96, 96))).bool())
            samples.append(s)
        return samples

    def evaluate(samples):
        metric = METRICS.build(
            dict(type='mmdet.CocoMetric', ann_file=ann_file,
                 metric=['bbox', 'segm'], prefix='detection'))
        metric.dataset_meta = dict(classes=SHAPES)
        evaluator = Evaluator(metric)
        evaluator.process(samples)
        return evaluator.evaluate(len(samples))

    perfect = evaluate(predictions(1))
    assert perfect['detection/bbox_mAP'] == pytest.approx(1.0)
    assert perfect['detection/segm_mAP'] == pytest.approx(1.0)

    partial = evaluate(predictions(2))
    dets = []
    for s in predictions(2):
        for box, label in zip(s.pred_instances.bboxes.tolist(),
                              s.pred_instances.labels.tolist()):
            dets.append(dict(image_id=s.img_id, category_id=label + 1,
                             bbox=[box[0], box[1], box[2] - box[0],
                                   box[3] - box[1]], score=1.0))
    ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert 0 < partial['detection/bbox_mAP'] < 1
    assert partial['detection/bbox_mAP'] == pytest.approx(
        round(ev.stats[0], 3))


def test_caption_metric_perfect_and_partial():
    refs = {
        1: ['a large red star and a small blue ring',
            'a red star in the center'],
        2: ['a green square on the left', 'one shape: a green square'],
    }
    metric = CaptionMetric(scorers=('BLEU', 'CIDEr'), prefix='captioning')
    evaluator = Evaluator(metric)
    samples = []
    for image_id, pred in ((1, 'a large red star and a small blue ring'),
                           (2, 'a green square on the left')):
        s = UPv2DataSample(metainfo=dict(image_id=image_id))
        s.set_task('captioning').set_gt_caption(refs[image_id])
        samples.append(s.set_pred_caption(pred))
    evaluator.process(samples)
    perfect = evaluator.evaluate(2)
    assert perfect['captioning/BLEU-4'] == pytest.approx(100.0, abs=1e-3)
    assert perfect['captioning/CIDEr'] > 100

    # a partial case against pycocoevalcap called directly
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    preds = {1: 'a red star and a blue ring', 2: 'a square on the right'}
    tok = PTBTokenizer()
    res = tok.tokenize({i: [dict(caption=c)] for i, c in preds.items()})
    gts = tok.tokenize({i: [dict(caption=c) for c in refs[i]]
                        for i in preds})
    bleu, _ = Bleu(4).compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    ours = caption_scores(preds, refs)
    assert ours['BLEU-4'] == pytest.approx(bleu[3] * 100)
    assert ours['CIDEr'] == pytest.approx(cider * 100)
    assert 0 < ours['BLEU-1'] < 100


def test_caption_metric_ann_file_keys_references_by_image_id(tmp_path):
    """With ``ann_file`` the references are every caption whose
    ``image_id`` is the prediction's. In this COCO-caption file annotation
    ids and image ids differ but overlap (annotation 1 describes image 3,
    ...), so references keyed by annotation id would score against other
    images' captions without any error. The expected scores come from
    pycocoevalcap's scorers on pycocotools' own ``imgToAnns`` index (what
    ``COCOEvalCap.evaluate`` feeds them), not from mmupv2 code."""
    import json

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from pycocotools.coco import COCO
    captions = {  # image id -> (annotation ids, captions)
        1: ((3, 4), ('a red circle on the left', 'one red circle')),
        2: ((5, 6), ('a blue square at the top', 'a small blue square')),
        3: ((1, 2), ('a green star and a yellow ring',
                     'two shapes: a star and a ring')),
    }
    ann_file = tmp_path / 'captions_val.json'
    ann_file.write_text(json.dumps(dict(
        images=[dict(id=i, file_name=f'{i}.png') for i in captions],
        annotations=[dict(id=a, image_id=i, caption=c)
                     for i, (ids, texts) in captions.items()
                     for a, c in zip(ids, texts)])))
    preds = {1: 'a red circle', 2: 'a blue square on the top',
             3: 'a star and a ring'}

    metric = CaptionMetric(scorers=('BLEU', 'CIDEr'),
                           ann_file=str(ann_file), prefix='captioning')
    evaluator = Evaluator(metric)
    samples = []
    for image_id, pred in preds.items():
        s = UPv2DataSample(metainfo=dict(image_id=image_id))
        samples.append(s.set_task('captioning').set_pred_caption(pred))
    evaluator.process(samples)
    ours = evaluator.evaluate(len(samples))

    coco = COCO(str(ann_file))
    tok = PTBTokenizer()
    gts = tok.tokenize({i: coco.imgToAnns[i] for i in preds})
    res = tok.tokenize({i: [dict(image_id=i, caption=c)]
                        for i, c in preds.items()})
    bleu, _ = Bleu(4).compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    assert ours['captioning/BLEU-4'] == pytest.approx(bleu[3] * 100)
    assert ours['captioning/BLEU-1'] == pytest.approx(bleu[0] * 100)
    assert ours['captioning/CIDEr'] == pytest.approx(cider * 100)
    assert 0 < ours['captioning/CIDEr']


def test_caption_metric_errors():
    with pytest.raises(ValueError, match='unknown caption scorers'):
        caption_scores({1: 'a'}, {1: ['a']}, scorers=('BLEU-9', ))
    with pytest.raises(KeyError, match='no reference captions'):
        caption_scores({3: 'a'}, {1: ['a']})


def _retrieval_samples(image_feats, text_feats_per_image):
    samples = []
    for i, (img, texts) in enumerate(zip(image_feats,
                                         text_feats_per_image)):
        s = UPv2DataSample(metainfo=dict(image_id=i)).set_task('retrieval')
        s.image_feat = img
        s.text_feat = texts
        samples.append(s)
    return samples


def test_retrieval_metric_perfect_and_partial():
    torch.manual_seed(0)
    basis = torch.eye(4)
    # perfect: every text equals its image's feature
    samples = _retrieval_samples(basis, [basis[i].repeat(2, 1)
                                         for i in range(4)])
    evaluator = Evaluator(ImageTextRetrievalMetric(topk=(1, 5)))
    evaluator.process(samples)
    metrics = evaluator.evaluate(4)
    assert metrics['retrieval/i2t_R@1'] == 100.0
    assert metrics['retrieval/t2i_R@1'] == 100.0
    # partial: image 3's texts point at image 0 instead
    texts = [basis[i].repeat(2, 1) for i in range(4)]
    texts[3] = (basis[0] - 0.01 * basis[3]).repeat(2, 1)
    evaluator = Evaluator(ImageTextRetrievalMetric(topk=(1, )))
    evaluator.process(_retrieval_samples(basis, texts))
    metrics = evaluator.evaluate(4)
    # i2t: image 3's own texts are not the nearest -> 3 of 4 images hit
    assert metrics['retrieval/i2t_R@1'] == pytest.approx(75.0)
    # t2i: texts of image 3 retrieve image 0 -> 6 of 8 texts hit
    assert metrics['retrieval/t2i_R@1'] == pytest.approx(75.0)
    with pytest.raises(KeyError, match='image_feat'):
        ImageTextRetrievalMetric().process(
            None, [UPv2DataSample().to_dict()])


def _recall_by_hand(sim, text_to_image, k):
    """R@k of both directions, counted query by query (no library code).

    Returns:
        tuple: (i2t, t2i) in [0, 100].
    """
    num_images, num_texts = len(sim), len(sim[0])
    i2t_hits = 0
    for i in range(num_images):
        ranked = sorted(range(num_texts), key=lambda t: -sim[i][t])[:k]
        i2t_hits += any(text_to_image[t] == i for t in ranked)
    t2i_hits = 0
    for t in range(num_texts):
        ranked = sorted(range(num_images), key=lambda i: -sim[i][t])[:k]
        t2i_hits += text_to_image[t] in ranked
    return 100.0 * i2t_hits / num_images, 100.0 * t2i_hits / num_texts


#: (3 images, 6 texts) hand-built similarities; texts 2k, 2k+1 describe
#: image k. Image-to-text R@1 hits images 0 and 2 (2 of 3); text-to-image
#: R@1 hits only texts 0 and 4 (2 of 6), so the two directions differ.
RETRIEVAL_SIM = [
    [0.9, 0.2, 0.8, 0.1, 0.1, 0.5],
    [0.3, 0.9, 0.5, 0.3, 0.1, 0.1],
    [0.1, 0.1, 0.2, 0.9, 0.95, 0.4],
]
RETRIEVAL_TEXT_TO_IMAGE = [0, 0, 1, 1, 2, 2]


def test_retrieval_directions_from_a_hand_built_similarity():
    """i2t and t2i differ on this gallery: each is reported under its own
    name, with the values counted by hand (a swap of the two is caught)."""
    sim = torch.tensor(RETRIEVAL_SIM)
    metrics = ImageTextRetrievalMetric.recalls_from_similarity(
        sim, torch.tensor(RETRIEVAL_TEXT_TO_IMAGE), topk=(1, 2, 5))
    for k in (1, 2, 5):
        i2t, t2i = _recall_by_hand(RETRIEVAL_SIM, RETRIEVAL_TEXT_TO_IMAGE, k)
        assert metrics[f'i2t_R@{k}'] == pytest.approx(i2t)
        assert metrics[f't2i_R@{k}'] == pytest.approx(t2i)
    # the test only means something if the directions differ
    assert _recall_by_hand(RETRIEVAL_SIM, RETRIEVAL_TEXT_TO_IMAGE, 1) == (
        pytest.approx(200 / 3), pytest.approx(100 / 3))


def test_retrieval_metric_directions_through_the_evaluator():
    """The same through ``process`` / ``compute_metrics``: unit image
    features and texts whose features are their similarity columns, so the
    cosine similarity is the hand-built matrix with each column normalised
    (which may change the image-to-text ranking, not the text-to-image
    one; on this matrix the R@1 of the two directions still differ).
    """
    sim = torch.tensor(RETRIEVAL_SIM)
    text_feats = sim.t()  # (T, I): text t's similarity to every image
    texts = [text_feats[[t for t, i in enumerate(RETRIEVAL_TEXT_TO_IMAGE)
                         if i == image]] for image in range(3)]
    evaluator = Evaluator(ImageTextRetrievalMetric(topk=(1, 2)))
    evaluator.process(_retrieval_samples(torch.eye(3), texts))
    metrics = evaluator.evaluate(3)
    cosine = (text_feats / text_feats.norm(dim=1, keepdim=True)).t()
    for k in (1, 2):
        i2t, t2i = _recall_by_hand(cosine.tolist(), RETRIEVAL_TEXT_TO_IMAGE,
                                   k)
        assert metrics[f'retrieval/i2t_R@{k}'] == pytest.approx(i2t)
        assert metrics[f'retrieval/t2i_R@{k}'] == pytest.approx(t2i)
    assert metrics['retrieval/i2t_R@1'] != metrics['retrieval/t2i_R@1']
