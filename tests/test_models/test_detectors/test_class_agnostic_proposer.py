# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json
import os.path as osp

import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmupv2.datasets import UPv2CocoDataset
from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

CLASSES = ('object', )
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY_ENCODER = osp.join(ROOT, 'configs', '_base_', 'models',
                        'image_encoder_tiny.py')


@pytest.fixture(scope='module')
def object_ann_file(shapes_root, tmp_path_factory):
    """The shapes val annotations with every instance of one category,
    "object" (the class-agnostic ground truth)."""
    with open(osp.join(shapes_root, 'annotations',
                       'instances_val.json')) as f:
        coco = json.load(f)
    coco['categories'] = [dict(id=1, name='object', supercategory='object')]
    for ann in coco['annotations']:
        ann['category_id'] = 1
    path = tmp_path_factory.mktemp('object') / 'instances_val_object.json'
    path.write_text(json.dumps(coco))
    return str(path), coco


def _evaluate(ann_file, samples):
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_coco_metric_gives_full_map_to_ground_truth(object_ann_file):
    """The evaluation path is right: ground truth scores mAP 1.0."""
    ann_file, coco = object_ann_file
    samples = []
    for img in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        boxes = torch.tensor([a['bbox'] for a in anns]).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        rles = [dict(a['segmentation'], counts=a['segmentation'][
            'counts'].encode()) for a in anns]
        masks = torch.from_numpy(
            mask_util.decode(rles)).permute(2, 0, 1).bool()
        sample = UPv2DataSample(metainfo=dict(
            img_id=img['id'], ori_shape=(img['height'], img['width'])))
        sample.pred_instances = InstanceData(
            bboxes=boxes, scores=torch.ones(len(anns)),
            labels=torch.zeros(len(anns), dtype=torch.long), masks=masks)
        samples.append(sample)
    metrics = _evaluate(ann_file, samples)
    assert metrics['coco/bbox_mAP'] == 1.0
    assert metrics['coco/segm_mAP'] == 1.0


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
        data_prefix=dict(img='images/'), metainfo=dict(classes=CLASSES),
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
