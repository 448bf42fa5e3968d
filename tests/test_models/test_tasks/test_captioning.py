# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.decoders import TokenSegment
from mmupv2.models.tasks import CaptioningTask


def test_loss_and_gradients(tiny_model, images, samples, grad_parts,
                            shared_parts):
    tiny_model.train()
    losses = tiny_model(images, samples('captioning'), mode='loss')
    assert set(losses) == {'captioning.loss_caption'}
    assert torch.isfinite(losses['captioning.loss_caption'])
    losses['captioning.loss_caption'].backward()
    assert grad_parts(tiny_model) == shared_parts | {'tasks.captioning'}


def test_loss_is_next_token_cross_entropy(tiny_model, images, samples, ref):
    """By hand, each caption alone: ``[<SPE>; image; <s> w_1 .. w_n]`` with
    a causal text; the output at ``<s>`` must predict ``w_1``, ..., at
    ``w_n`` the end token (the vocabulary encoded token by token); the
    loss is the mean cross-entropy over every real position of the batch
    (the shorter caption is padded in the batch, not here)."""
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    captions = ['a red circle on the left', 'a big star']
    batch = samples('captioning')
    for sample, caption in zip(batch, captions):
        sample.set_gt_caption([caption])
    rows, labels = [], []
    with torch.no_grad():
        loss = tiny_model(images, batch, 'loss')['captioning.loss_caption']
        vocab = ref.vocabulary(tiny_model)
        for i, caption in enumerate(captions):
            ids = ref.token_ids(tiny_model, caption)[0]
            assert len(ids) <= task.max_length + 1  # nothing truncated
            image = ref.image_segment(tiny_model, images[i:i + 1],
                                      batch[i:i + 1], 'caption_image_input')
            text = TokenSegment(
                tiny_model.text_encoder.embed(ids[None, :-1]), 'text',
                'caption_text_input', causal=True)
            hidden = tiny_model.decoder([image, text]).segment(1)[0]
            rows.append(ref.scaled_cosine(hidden, vocab,
                                          task.similarity.logit_scale))
            labels += ids[1:].tolist()
    expected = ref.cross_entropy(torch.cat(rows), labels)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)


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


def _decode(model, ids):
    """Token ids up to the first end token, as text."""
    ids = ids.tolist()
    end = model.text_encoder.end_token_id
    ids = ids[:ids.index(end)] if end in ids else ids
    return model.text_encoder.tokenizer.decode(
        ids, skip_special_tokens=True).strip()


def test_predict(tiny_model, images, samples):
    """``pred_caption`` is the text of the generated ids."""
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    with torch.no_grad():
        ids = task.generate(tiny_model, images, samples('captioning'))
        out = tiny_model(images, samples('captioning'), mode='predict')
    for sample, row in zip(out, ids):
        assert sample.pred_caption == _decode(tiny_model, row)
        assert sample.pred_caption  # the untrained model says something


def test_predict_of_forced_ids(tiny_model, images, samples, monkeypatch):
    """Whatever the search returns is what ``pred_caption`` says: the
    words before the end token, without special tokens."""
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    tok = tiny_model.text_encoder.tokenizer
    end = tiny_model.text_encoder.end_token_id
    words = tok('a red circle', add_special_tokens=False)['input_ids']
    forced = torch.tensor([words + [end, end],
                           words[:1] + [end] + words[1:] + [end]])
    monkeypatch.setattr(task, 'generate', lambda *args, **kwargs: forced)
    with torch.no_grad():
        out = tiny_model(images, samples('captioning'), mode='predict')
    assert [s.pred_caption for s in out] == ['a red circle', 'a']


def test_batched_beam_search_equals_per_image(tiny_model, samples):
    """Beam 3 over three images at once gives each image the caption it
    gets alone (the beams of one image never mix with another's), with the
    key/value cache and with full recomputation."""
    tiny_model.eval()
    task = tiny_model.tasks['captioning']
    images = torch.randn(
        3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    batch = samples('captioning', 3)
    with torch.no_grad():
        alone = [
            task.generate(tiny_model, images[i:i + 1], batch[i:i + 1],
                          beam_size=3)[0] for i in range(3)
        ]
        together = {
            use_cache: task.generate(tiny_model, images, batch, beam_size=3,
                                     use_cache=use_cache)
            for use_cache in (True, False)
        }
    captions = [_decode(tiny_model, row) for row in alone]
    assert len(set(captions)) > 1, 'the images must differ to tell'
    end = tiny_model.text_encoder.end_token_id
    for use_cache, ids in together.items():
        assert [_decode(tiny_model, row) for row in ids] == captions, (
            f'use_cache={use_cache}')
        for row, single in zip(ids, alone):
            # the same ids; the batch pads a shorter caption with end tokens
            assert torch.equal(row[:len(single)], single)
            assert bool((row[len(single):] == end).all())


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
    assert (task.beam_size, task.max_length, task.use_cache) == (2, 21, True)
