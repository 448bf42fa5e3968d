# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.image_encoders import ImageEncoderOutput
from mmupv2.models.tasks.mask_paste import decode_rle_masks

from .conftest import CLASSES

TASKS = ('detection', 'instance_segmentation')
NAMES = [c if isinstance(c, str) else c[0] for c in CLASSES]


def _region_logits(model, images, batch, ref):
    """(B, O, C) Eq. 6 by hand for the regional tokens' decoder outputs
    against the class names encoded one by one."""
    task = model.tasks['detection']
    seg = ref.image_segment(model, images, batch, 'localization_image_input')
    num_regions = model.image_encoder(images, batch).regional_tokens.shape[1]
    regions = model.decoder([seg]).hidden_states[:, -num_regions:]
    targets = torch.stack([ref.text_spe(model, n) for n in NAMES])
    return ref.scaled_cosine(regions, targets, task.similarity.logit_scale)


@pytest.mark.parametrize('task', TASKS)
def test_loss_and_gradients(task, tiny_model, images, samples, grad_parts,
                            shared_parts):
    tiny_model.train()
    losses = tiny_model(images, samples(task), mode='loss')
    # the class loss and the (stub) proposal network's loss, task-prefixed
    assert set(losses) == {
        f'{task}.loss_cls', f'{task}.proposal.loss_stub_bbox'
    }
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert grad_parts(tiny_model) == shared_parts | {f'tasks.{task}'}


def test_loss_equals_cross_entropy_of_matched_labels(tiny_model, images,
                                                     samples, ref):
    """``loss_cls`` is the cross-entropy of the regional tokens that the
    image encoder matched (``matched_indices``) with the labels of their
    ground-truth objects, averaged over the batch's matches; the proposal
    losses pass through unchanged. (Instance segmentation inherits the
    loss.)"""
    task = 'detection'
    tiny_model.eval()  # no dropout in the text encoder and decoder
    batch = samples(task, num_objects=3)
    gt_labels = [torch.tensor([3, 1, 2]), torch.tensor([2, 3, 1])]
    for sample, labels in zip(batch, gt_labels):
        sample.gt_instances.labels = labels
    with torch.no_grad():
        losses = tiny_model(images, batch, 'loss')
        # the loss asked the encoder for its matching: ask the same here
        enc = tiny_model.image_encoder(images, batch, with_loss=True)
        logits = _region_logits(tiny_model, images, batch, ref)
    rows, labels = [], []
    for b, (token_idx, gt_idx) in enumerate(enc.matched_indices):
        assert len(token_idx) == 3
        for token, gt in zip(token_idx.tolist(), gt_idx.tolist()):
            rows.append(logits[b, token])
            labels.append(int(gt_labels[b][gt]))
    expected = ref.cross_entropy(torch.stack(rows), labels)
    torch.testing.assert_close(
        losses[f'{task}.loss_cls'], expected, rtol=1e-4, atol=1e-5)
    assert abs(float(ref.cross_entropy(torch.stack(rows), [0] * 6)) -
               float(expected)) > 1e-3  # the labels matter
    torch.testing.assert_close(losses[f'{task}.proposal.loss_stub_bbox'],
                               enc.losses['loss_stub_bbox'])


#: (img_shape, scale_factor (w, h), ori_shape) of a mixed-size batch
#: padded to 64 x 64
MIXED_SIZES = [((64, 48), (0.5, 0.5), (128, 96)),
               ((48, 64), (2.0, 1.5), (32, 32))]


def _mixed_batch(task, samples):
    """Samples of the two images of ``MIXED_SIZES`` (in the 64 x 64 test
    images the padding holds noise, which must not matter)."""
    batch = samples(task)
    for sample, (img_shape, scale, ori_shape) in zip(batch, MIXED_SIZES):
        sample.set_metainfo(dict(img_shape=img_shape, scale_factor=scale,
                                 ori_shape=ori_shape,
                                 batch_input_shape=(64, 64)))
    return batch


def _alone(task, samples, images, i):
    """Image ``i`` of the mixed batch alone, unpadded."""
    (h, w), scale, ori_shape = MIXED_SIZES[i]
    sample = samples(task, 1)[0]
    sample.set_metainfo(dict(img_shape=(h, w), scale_factor=scale,
                             ori_shape=ori_shape, batch_input_shape=(h, w)))
    return images[i:i + 1, :, :h, :w], [sample]


def _boxes_by_hand(boxes, img_shape, scale):
    """Normalised cxcywh (K, 4) -> xyxy in original-image pixels."""
    (h, w), (sw, sh) = img_shape, scale
    cx, cy, bw, bh = boxes.unbind(-1)
    x1 = ((cx - bw / 2) * w).clamp(0, w) / sw
    x2 = ((cx + bw / 2) * w).clamp(0, w) / sw
    y1 = ((cy - bh / 2) * h).clamp(0, h) / sh
    y2 = ((cy + bh / 2) * h).clamp(0, h) / sh
    return torch.stack([x1, y1, x2, y2], -1)


def test_predictions_by_hand_in_a_mixed_size_batch(tiny_model, images,
                                                   samples, ref):
    """Scores are ``sigmoid(objectness) * softmax(logits)`` of every
    (proposal, class) pair, best first; boxes are the proposals' in each
    image's original pixels (its own size and scale factor); an image
    predicts the same (masks included) alone as inside a padded batch of
    mixed sizes. (Detection is the same without the masks.)"""
    task = 'instance_segmentation'
    tiny_model.eval()
    batch = _mixed_batch(task, samples)
    with torch.no_grad():
        out = tiny_model(images, batch, 'predict')
        enc = tiny_model.image_encoder(images, batch)
        logits = _region_logits(tiny_model, images, batch, ref)
        alone = [
            tiny_model(*_alone(task, samples, images, i), 'predict')[0]
            for i in range(2)
        ]
    num_classes = len(NAMES)
    probs = logits.softmax(-1) * enc.regional_objectness.sigmoid()[..., None]
    for b, (sample, (img_shape, scale, ori)) in enumerate(
            zip(out, MIXED_SIZES)):
        pred = sample.pred_instances
        scores, idx = probs[b].flatten().sort(descending=True)
        tol = dict(rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(pred.scores, scores, **tol)
        assert pred.labels.tolist() == (idx % num_classes).tolist()
        expected = _boxes_by_hand(enc.regional_boxes[b], img_shape, scale)
        torch.testing.assert_close(pred.bboxes,
                                   expected[idx // num_classes], **tol)
        single = alone[b].pred_instances
        torch.testing.assert_close(single.scores, pred.scores, **tol)
        assert torch.equal(single.labels, pred.labels)
        torch.testing.assert_close(single.bboxes, pred.bboxes, **tol)
        masks = decode_rle_masks(pred.masks)
        assert masks.shape[1:] == ori
        assert torch.equal(decode_rle_masks(single.masks), masks)


@pytest.mark.parametrize('task', TASKS)
def test_loss_without_objects(task, tiny_model, images, samples):
    tiny_model.train()
    losses = tiny_model(images, samples(task, num_objects=0), mode='loss')
    assert losses[f'{task}.loss_cls'].item() == 0
    sum(losses.values()).backward()  # the graph is intact


def test_loss_needs_ground_truth_instances(tiny_model, images, samples):
    """The loss asks the image encoder for its proposal losses, which need
    every sample's gt_instances: the sample without is named."""
    tiny_model.train()
    batch = samples('detection')
    del batch[1].gt_instances
    with pytest.raises(ValueError, match='data sample 1 has none'):
        tiny_model(images, batch, mode='loss')


def test_loss_needs_matching(tiny_model, images, samples, monkeypatch):
    """An image encoder that ignores the request for its matching is an
    error, not a silent loss without classes."""
    tiny_model.train()
    encode = tiny_model.image_encoder.forward
    monkeypatch.setattr(tiny_model.image_encoder, 'forward',
                        lambda inputs, batch, with_loss: encode(inputs, batch))
    with pytest.raises(RuntimeError, match='matched_indices'):
        tiny_model(images, samples('detection'), mode='loss')


@pytest.mark.parametrize('task', TASKS)
def test_predict(task, tiny_model, images, samples):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(images, samples(task), mode='predict')
    num = min(100, 6 * 4)  # O proposals x C classes
    for sample in out:
        pred = sample.pred_instances
        assert pred.bboxes.shape == (num, 4)
        assert pred.scores.shape == pred.labels.shape == (num, )
        assert bool((pred.scores[:-1] >= pred.scores[1:]).all())
        assert int(pred.labels.max()) < 4
        # original-image pixels: the 64x48 input came from 128x96
        assert float(pred.bboxes[:, 0::2].max()) <= 96
        assert float(pred.bboxes[:, 1::2].max()) <= 128
        assert bool((pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all())
        if task == 'instance_segmentation':
            # COCO RLE at the original size, as mmdet's CocoMetric takes
            assert len(pred.masks) == num
            assert all(m['size'] == [128, 96] for m in pred.masks)
            assert decode_rle_masks(pred.masks).shape == (num, 128, 96)
        else:
            assert 'masks' not in pred


def test_predict_by_feat_scores_and_boxes(tiny_model, samples):
    task = tiny_model.tasks['detection']
    task.num_results = 3
    enc = ImageEncoderOutput(
        regional_tokens=torch.zeros(1, 2, 32),
        regional_boxes=torch.tensor([[[0.5, 0.5, 0.5, 0.5],
                                      [0.25, 0.25, 0.5, 0.5]]]),
        regional_masks=torch.zeros(1, 2, 16, 16),
        regional_objectness=torch.tensor([[0.0, 2.0]]),
        global_tokens=torch.zeros(1, 1, 32),
        global_padding_mask=torch.zeros(1, 1, dtype=torch.bool))
    logits = torch.tensor([[[0., 0., 0., 0.], [4., 0., 0., 0.]]])
    pred = task.predict_by_feat(logits, enc,
                                samples('detection', 1))[0].pred_instances
    expected = torch.sigmoid(torch.tensor(2.)) * logits[0, 1].softmax(-1)[0]
    torch.testing.assert_close(pred.scores[0], expected)
    assert pred.labels[0] == 0
    # proposal 1: cxcywh (.25, .25, .5, .5) of a 48x64 (w x h) image, x2
    torch.testing.assert_close(pred.bboxes[0],
                               torch.tensor([0., 0., 48., 64.]))
