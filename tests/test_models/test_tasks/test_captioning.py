# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.tasks import CaptioningTask


def test_loss_and_gradients(tiny_model, images, samples, grad_parts,
                            shared_parts):
    tiny_model.train()
    losses = tiny_model(images, samples('captioning'), mode='loss')
    assert set(losses) == {'captioning.loss_caption'}
    assert torch.isfinite(losses['captioning.loss_caption'])
    losses['captioning.loss_caption'].backward()
    assert grad_parts(tiny_model) == shared_parts | {'tasks.captioning'}


def test_text_is_causal(tiny_model, images, samples):
    """Changing a caption token leaves the logits of earlier positions."""
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    batch = samples('captioning', 1)
    captions = ['a red circle on the left', 'a red circle at the left']
    ids = [tiny_model.text_encoder.tokenize([c])[0][0] for c in captions]
    first_diff = int((ids[0] != ids[1]).nonzero()[0])
    logits = []
    with torch.no_grad():
        for caption in captions:
            batch[0].set_gt_caption(caption)
            logits.append(task.forward(tiny_model, images[:1], batch)[0])
    # input position i holds token i and predicts token i + 1
    torch.testing.assert_close(logits[0][:, :first_diff],
                               logits[1][:, :first_diff])
    assert not torch.allclose(logits[0][:, first_diff],
                              logits[1][:, first_diff])


def test_predict(tiny_model, images, samples):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(images, samples('captioning'), mode='predict')
    assert all(isinstance(s.pred_caption, str) for s in out)


@pytest.mark.parametrize('beam_size', [1, 2, 3])
def test_kv_cache_equals_full_recompute(tiny_model, images, samples,
                                        beam_size):
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    with torch.no_grad():
        cached = task.generate(
            tiny_model, images, samples('captioning'), beam_size=beam_size,
            use_cache=True)
        full = task.generate(
            tiny_model, images, samples('captioning'), beam_size=beam_size,
            use_cache=False)
    assert torch.equal(cached, full)


def test_beam_one_equals_greedy(tiny_model, images, samples):
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    with torch.no_grad():
        beam = task.generate(
            tiny_model, images, samples('captioning'), beam_size=1)
        greedy = task.generate(
            tiny_model, images, samples('captioning'), greedy=True)
    assert beam.shape[1] <= task.max_length
    assert torch.equal(beam, greedy)


def test_special_tokens_never_generated(tiny_model, images, samples):
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    with torch.no_grad():
        ids = task.generate(tiny_model, images, samples('captioning'))
    assert not set(ids.flatten().tolist()) & set(task.banned_ids(tiny_model))


def test_needs_captions(tiny_model, images, samples):
    batch = samples('captioning')
    for sample in batch:
        del sample.gt_caption
    with pytest.raises(KeyError, match='gt_caption'):
        tiny_model(images, batch, mode='loss')


def test_defaults_are_the_papers():
    task = CaptioningTask()
    assert (task.beam_size, task.max_length, task.use_cache) == (2, 20, True)
