# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.image_encoders import ImageEncoderOutput

TASKS = ('detection', 'instance_segmentation')


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


@pytest.mark.parametrize('task', TASKS)
def test_loss_without_objects(task, tiny_model, images, samples):
    tiny_model.train()
    losses = tiny_model(images, samples(task, num_objects=0), mode='loss')
    assert losses[f'{task}.loss_cls'].item() == 0
    sum(losses.values()).backward()  # the graph is intact


def test_loss_needs_matching(tiny_model, images, samples):
    tiny_model.train()
    batch = samples('detection')
    for sample in batch:
        del sample.gt_instances
    with pytest.raises(RuntimeError, match='matched_indices'):
        tiny_model(images, batch, mode='loss')


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
            assert pred.masks.shape == (num, 128, 96)
            assert pred.masks.dtype == torch.bool
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
