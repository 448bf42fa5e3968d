# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json
import os.path as osp

import pycocotools.mask as mask_util
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmupv2.datasets import UPv2CocoDataset
from mmupv2.evaluation import ClassAgnosticCocoMetric
from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

SHAPES_CLASSES = ('circle', 'square', 'triangle', 'diamond', 'star',
                  'cross', 'ring')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY_ENCODER = osp.join(ROOT, 'configs', '_base_', 'models',
                        'image_encoder_tiny.py')


@pytest.fixture(scope='module')
def object_ann_file(shapes_root):
    """The shapes val annotations (seven categories) and their content: the
    metric reads them as one category, "object"."""
    path = osp.join(shapes_root, 'annotations', 'instances_val.json')
    with open(path) as f:
        return path, json.load(f)


def _evaluate(ann_file, samples):
    metric = ClassAgnosticCocoMetric(ann_file=ann_file,
                                     metric=['bbox', 'segm'])
    evaluator = Evaluator([metric])
    # the data set's own names: the metric keeps its one category
    evaluator.dataset_meta = dict(classes=SHAPES_CLASSES)
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def _ground_truth_samples(coco, label_offset=0, box_shift=0.0):
    """The ground truth of every image as predictions (label 0 unless
    ``label_offset``), boxes moved right by ``box_shift`` pixels."""
    samples = []
    for img in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        boxes = torch.tensor([a['bbox'] for a in anns]).reshape(-1, 4).float()
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] += box_shift
        rles = [dict(a['segmentation'], counts=a['segmentation'][
            'counts'].encode()) for a in anns]
        masks = torch.from_numpy(
            mask_util.decode(rles)).permute(2, 0, 1).bool()
        sample = UPv2DataSample(metainfo=dict(
            img_id=img['id'], ori_shape=(img['height'], img['width'])))
        sample.pred_instances = InstanceData(
            bboxes=boxes, scores=torch.ones(len(anns)),
            labels=torch.full((len(anns), ), label_offset), masks=masks)
        samples.append(sample)
    return samples


def test_coco_metric_gives_full_map_to_ground_truth(object_ann_file):
    """The evaluation path is right: the ground truth of seven categories,
    predicted as "object", scores mAP 1.0; moved boxes score less."""
    ann_file, coco = object_ann_file
    assert len(coco['categories']) == 7
    metrics = _evaluate(ann_file, _ground_truth_samples(coco))
    assert metrics['coco/bbox_mAP'] == 1.0
    assert metrics['coco/segm_mAP'] == 1.0
    moved = _evaluate(ann_file, _ground_truth_samples(coco, box_shift=4.0))
    assert moved['coco/bbox_mAP'] < 0.9
    assert moved['coco/segm_mAP'] == 1.0  # the masks did not move


def test_class_agnostic_metric_refuses_what_has_no_meaning():
    with pytest.raises(ValueError, match='needs ann_file'):
        ClassAgnosticCocoMetric(metric='bbox')
    with pytest.raises(ValueError, match='classwise'):
        ClassAgnosticCocoMetric(ann_file='x.json', classwise=True)


@pytest.fixture(scope='module')
def proposer():
    image_encoder = Config.fromfile(TINY_ENCODER).image_encoder
    image_encoder.backbone.init_cfg = None  # as test_image_encoders
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='ClassAgnosticProposer',
             image_encoder=image_encoder,
             data_preprocessor=dict(
                 type='mmdet.DetDataPreprocessor',
                 mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                 bgr_to_rgb=True, pad_mask=True, pad_size_divisor=32),
             max_per_img=10))
    model.init_weights()
    return model


def _batch(shapes_root, ann_file):
    dataset = UPv2CocoDataset(
        data_root=shapes_root, ann_file=ann_file,
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=SHAPES_CLASSES),  # the proposer ignores them
        task='instance_segmentation',
        pipeline=[
            dict(type='mmdet.LoadImageFromFile'),
            dict(type='mmdet.Resize', scale=(128, 112), keep_ratio=True),
            dict(type='mmdet.LoadAnnotations', with_bbox=True,
                 with_mask=True),
            dict(type='PackUPv2Inputs')
        ])
    return pseudo_collate([dataset[i] for i in range(2)])


def test_predictions_are_evaluated_by_coco_metric(proposer, shapes_root,
                                                  object_ann_file):
    ann_file, _ = object_ann_file
    batch = _batch(shapes_root, ann_file)
    proposer.eval()
    with torch.no_grad():  # as mmengine's test loop
        samples = proposer.test_step(batch)
    for sample in samples:
        pred = sample.pred_instances
        assert len(pred) == 10
        assert pred.masks.shape == (10, 96, 96)  # the original image
        assert pred.labels.eq(0).all()
        assert bool(((pred.bboxes >= 0) & (pred.bboxes <= 96)).all())
        assert bool((pred.scores.diff() <= 0).all())
    metrics = _evaluate(ann_file, samples)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert -1 <= metrics[key] <= 1


def test_loss_trains_the_proposal_network(proposer, shapes_root,
                                          object_ann_file):
    ann_file, _ = object_ann_file
    proposer.train()
    data = proposer.data_preprocessor(_batch(shapes_root, ann_file), True)
    losses = proposer(**data, mode='loss')
    assert 'loss_dice' in losses and 'region_loss_cls' in losses
    assert all(torch.isfinite(v) for v in losses.values())
    outs = proposer(data['inputs'], data['data_samples'], mode='tensor')
    assert [o.shape[:2] for o in outs] == [(2, 20)] * 3


def test_postprocess_is_the_detection_tasks(proposer):
    """Boxes and masks go to pixels as in ``DetectionTask`` (one helper,
    ``tasks/proposal_postprocess.py``): boxes clamped to the image and
    divided by the scale factor; masks cropped to the cells that cover the
    image before the upsampling, so an image gets the same masks alone as
    in a padded batch whose padding cells hold noise."""
    gen = torch.Generator().manual_seed(0)
    objectness = torch.randn(20, generator=gen)
    boxes = torch.rand(20, 4, generator=gen) * 0.8 + 0.1  # cxcywh
    cells = torch.randn(20, 12, 10, generator=gen) * 3
    padded = torch.randn(20, 16, 16, generator=gen) * 3
    padded[:, :12, :10] = cells
    meta = dict(img_shape=(48, 40), ori_shape=(96, 80),
                scale_factor=(0.5, 0.5))
    alone = proposer._postprocess(objectness, boxes, cells,
                                  dict(meta, batch_input_shape=(48, 40)),
                                  rescale=True)
    batched = proposer._postprocess(objectness, boxes, padded,
                                    dict(meta, batch_input_shape=(64, 64)),
                                    rescale=True)
    assert alone.masks.shape == (10, 96, 80) and alone.masks.any()
    assert torch.equal(batched.masks, alone.masks)
    keep = objectness.sigmoid().topk(10).indices
    cx, cy, w, h = boxes[keep].unbind(-1)
    by_hand = torch.stack([
        ((cx - w / 2) * 40).clamp(0, 40), ((cy - h / 2) * 48).clamp(0, 48),
        ((cx + w / 2) * 40).clamp(0, 40), ((cy + h / 2) * 48).clamp(0, 48)
    ], -1) / 0.5
    torch.testing.assert_close(batched.bboxes, by_hand)
    torch.testing.assert_close(alone.bboxes, by_hand)
