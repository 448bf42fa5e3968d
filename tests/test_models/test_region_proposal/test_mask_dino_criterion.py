# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmupv2.models.region_proposal import (
    BinaryMaskDINOCriterion,
    ProposalNetworkOutput,
    ProposalPredictions,
)
from mmupv2.structures import UPv2DataSample

BATCH_SHAPE = (64, 64)


def _sample(boxes, img_shape=BATCH_SHAPE, bitmap=True):
    """A sample whose masks fill its boxes (xyxy pixels)."""
    h, w = img_shape
    masks = np.zeros((len(boxes), h, w), np.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, boxes):
        m[int(y1):int(y2), int(x1):int(x2)] = 1
    sample = UPv2DataSample(
        metainfo=dict(img_shape=img_shape, batch_input_shape=BATCH_SHAPE))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.full((len(boxes), ), 5),
        masks=BitmapMasks(masks, h, w) if bitmap else torch.from_numpy(
            masks))
    return sample


def _perfect(samples, num_queries=6, hit=(3, )):
    """Predictions with query ``hit[i]`` equal to ground truth i, the others
    background boxes with empty masks."""
    criterion = BinaryMaskDINOCriterion
    targets = criterion.get_targets(samples)
    bs = len(samples)
    objectness = torch.full((bs, num_queries), -4.0)
    boxes = torch.tensor([0.1, 0.1, 0.05, 0.05]).repeat(bs, num_queries, 1)
    masks = torch.full((bs, num_queries, 16, 16), -20.0)
    for b, target in enumerate(targets):
        for gt, q in enumerate(hit[:len(target)]):
            objectness[b, q] = 4.0
            boxes[b, q] = target.cxcywh[gt]
            masks[b, q] = torch.nn.functional.interpolate(
                target.masks[gt][None, None].float(), size=(16, 16))[0, 0] \
                * 40 - 20
    return ProposalPredictions(objectness, boxes, masks)


def test_matching_finds_the_right_query():
    samples = [_sample([[16, 8, 48, 40]]), _sample([[0, 0, 32, 32]])]
    criterion = BinaryMaskDINOCriterion(num_points=256)
    preds = _perfect(samples)
    indices = criterion.match(preds, criterion.get_targets(samples))
    for query_idx, gt_idx in indices:
        assert query_idx.tolist() == [3] and gt_idx.tolist() == [0]
    losses = criterion.loss(preds, indices, criterion.get_targets(samples))
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice'
    }
    assert losses['loss_bbox'] < 1e-6 and losses['loss_iou'] < 1e-5
    assert losses['loss_mask'] < 0.5 and losses['loss_dice'] < 0.5


def test_targets_are_binary_padded_and_normalised():
    sample = _sample([[0, 0, 20, 10]], img_shape=(40, 50), bitmap=False)
    target = BinaryMaskDINOCriterion.get_targets([sample])[0]
    assert target.labels.tolist() == [0]  # class 5 becomes "object"
    assert target.masks.shape == (1, ) + BATCH_SHAPE
    assert target.masks[0, 40:].sum() == 0
    torch.testing.assert_close(target.cxcywh,
                               torch.tensor([[0.2, 0.125, 0.4, 0.25]]))


def test_missing_masks_are_named():
    sample = _sample([[0, 0, 8, 8]])
    del sample.gt_instances.masks
    with pytest.raises(KeyError, match='with_mask=True'):
        BinaryMaskDINOCriterion.get_targets([sample])


def test_denoising_indices_follow_dinos_layout():
    samples = [_sample([[0, 0, 8, 8], [8, 8, 16, 16]]),
               _sample([[0, 0, 8, 8]])]
    targets = BinaryMaskDINOCriterion.get_targets(samples)
    # two groups of 2 * max_gt = 4 queries: [pos, pos, neg, neg]
    indices = BinaryMaskDINOCriterion.denoising_indices(
        targets, dict(num_denoising_queries=8, num_denoising_groups=2))
    assert indices[0][0].tolist() == [0, 1, 4, 5]
    assert indices[0][1].tolist() == [0, 1, 0, 1]
    assert indices[1][0].tolist() == [0, 4]
    assert indices[1][1].tolist() == [0, 0]


def test_forward_keys_and_empty_ground_truth():
    criterion = BinaryMaskDINOCriterion(num_points=64)
    for boxes in ([[16, 8, 48, 40]], []):
        samples = [_sample(boxes)]
        preds = _perfect(samples)
        for p in (preds.objectness, preds.boxes, preds.masks):
            p.requires_grad_()
        outputs = ProposalNetworkOutput(
            query=torch.zeros(1, 6, 8),
            decoder=[preds, preds],
            encoder=preds,
            denoising=[preds[:, :2], preds[:, :2]],
            dn_meta=dict(num_denoising_queries=2, num_denoising_groups=1))
        losses, matched = criterion(outputs, preds[:, :4], samples)
        assert {'enc_loss_cls', 'd0.loss_mask', 'loss_dice', 'dn_loss_bbox',
                'd0.dn_loss_iou', 'region_loss_cls'} <= set(losses)
        assert len(losses) == 5 * 5 + 1
        assert all(torch.isfinite(v) for v in losses.values())
        total = sum(losses.values())
        total.backward()
        assert torch.isfinite(preds.masks.grad).all()
        if boxes:
            assert matched[0][0].tolist() == [3]
            assert losses['region_loss_cls'].item() > 0
        else:
            assert len(matched[0][0]) == 0
            assert losses['loss_bbox'].item() == 0


def test_without_auxiliary_outputs_raises():
    preds = _perfect([_sample([[0, 0, 8, 8]])])
    outputs = ProposalNetworkOutput(query=torch.zeros(1, 6, 8),
                                    decoder=[preds])
    with pytest.raises(ValueError, match='for_loss=True'):
        BinaryMaskDINOCriterion(num_points=16)(
            outputs, preds, [_sample([[0, 0, 8, 8]])])
