# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``UniPerceiverV2(vocabulary='full' | 'data')``: the vocabulary targets of
captioning and MLM."""
import pytest
import torch

from mmupv2.models.tasks import vocabulary as vocabulary_module
from mmupv2.utils import load_model_checkpoint


def caption_token_ids(model, samples) -> list:
    tok = model.text_encoder.tokenizer
    texts = [t for s in samples('captioning') for t in s.gt_caption]
    texts += [s.text for s in samples('mlm')]
    return [i for t in texts
            for i in tok(t, add_special_tokens=False)['input_ids']]


@pytest.fixture
def data_model(tiny_model_builder, samples):
    """The tiny model, its targets the tokens of the test texts."""
    model = tiny_model_builder(vocabulary='data')
    model.set_vocabulary(caption_token_ids(model, samples))
    return model


def test_full_is_default_and_adds_no_state(tiny_model):
    assert tiny_model.vocabulary == 'full'
    assert not any('vocabulary' in k for k in tiny_model.state_dict())
    num = len(tiny_model.text_encoder.tokenizer)
    assert torch.equal(tiny_model.vocabulary_token_ids(), torch.arange(num))
    with pytest.raises(ValueError, match="vocabulary='data'"):
        tiny_model.set_vocabulary([1, 2])


def test_bad_option(tiny_model_builder):
    with pytest.raises(ValueError, match='vocabulary must be one of'):
        tiny_model_builder(vocabulary='train')


def test_unset_subset_raises_clearly(tiny_model_builder, images, samples):
    model = tiny_model_builder(vocabulary='data')
    with pytest.raises(RuntimeError, match='VocabularyFromDataHook.*'
                       'set_vocabulary'):
        model(images, samples('captioning'), mode='loss')
    with pytest.raises(RuntimeError, match='subset is empty'):
        model(None, samples('mlm'), mode='loss')
    # tasks without vocabulary targets are unaffected
    assert model(images, samples('classification'), mode='loss')


def test_subset_is_sorted_unique_with_end_token(data_model, samples):
    ids = data_model.vocabulary_token_ids()
    end = data_model.text_encoder.end_token_id
    expected = sorted(set(caption_token_ids(data_model, samples)) | {end})
    assert ids.tolist() == expected
    assert data_model.vocabulary_ids().shape == (len(expected), 3)
    with pytest.raises(ValueError, match='outside'):
        data_model.set_vocabulary([len(data_model.text_encoder.tokenizer)])


def test_whole_vocabulary_subset_equals_full(tiny_model, tiny_model_builder,
                                             images, samples):
    """Value check: a subset holding every token gives the full
    vocabulary's losses, captions and fill-mask predictions."""
    subset = tiny_model_builder(vocabulary='data')
    subset.set_vocabulary(range(len(subset.text_encoder.tokenizer)))
    for task, inputs in (('captioning', images), ('mlm', None)):
        losses = []
        for model in (tiny_model, subset):
            model.train()
            torch.manual_seed(7)
            losses.append(model(inputs, samples(task), mode='loss'))
        torch.testing.assert_close(losses[0], losses[1])
    outs = []
    for model in (tiny_model, subset):
        model.eval()
        batch = samples('mlm')
        batch[0].set_text('a red <mask> on the left')
        with torch.no_grad():
            outs.append((
                model.tasks['captioning'].generate(
                    model, images, samples('captioning'), beam_size=2),
                model(images, samples('captioning'), mode='predict'),
                model(None, batch, mode='predict')))
    assert torch.equal(outs[0][0], outs[1][0])
    assert [s.pred_caption for s in outs[0][1]] == [
        s.pred_caption for s in outs[1][1]]
    assert torch.equal(outs[0][2][0].pred_label, outs[1][2][0].pred_label)


def test_subset_targets_and_generation(data_model, images, samples):
    task = data_model.tasks['captioning']
    subset = data_model.vocabulary_token_ids()
    data_model.eval()
    with torch.no_grad():
        logits, targets, valid = task.forward(data_model, images,
                                              samples('captioning'))
        ids = task.generate(data_model, images, samples('captioning'))
        out = data_model(images, samples('captioning'), mode='predict')
    assert logits.shape[-1] == len(subset)
    # target rows map back to the caption's token ids
    caption_ids, _ = data_model.text_encoder.tokenize(
        [samples('captioning')[0].gt_caption[0]], task.max_length + 1)
    row = targets[0][valid[0]]
    assert subset[row].tolist() == caption_ids[0, 1:].tolist()
    # captions are token ids of the subset, decoded as before
    assert set(ids.flatten().tolist()) <= set(subset.tolist())
    assert all(isinstance(s.pred_caption, str) for s in out)


def test_tokens_outside_subset_are_ignored_with_one_warning(
        tiny_model_builder, images, samples, monkeypatch):
    model = tiny_model_builder(vocabulary='data')
    tok = model.text_encoder.tokenizer
    model.set_vocabulary(tok('a red circle', add_special_tokens=False)
                         ['input_ids'])
    messages = []
    monkeypatch.setattr(vocabulary_module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    model.train()
    for _ in range(2):
        loss = model(images, samples('captioning'),
                     mode='loss')['captioning.loss_caption']
        assert torch.isfinite(loss)
    assert len(messages) == 1 and 'captioning' in messages[0]


def test_state_dict_round_trip(data_model, tiny_model_builder, images,
                               samples, tmp_path):
    data_model.eval()
    with torch.no_grad():
        expected = data_model.vocabulary_embeddings()
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=data_model.state_dict()), path)
    assert 'vocabulary_targets.subset' in data_model.state_dict()

    fresh = tiny_model_builder(vocabulary='data').eval()
    with torch.no_grad():
        for param in fresh.parameters():
            param.add_(1.0)  # so that the weights must come from the file
    assert not fresh.vocabulary_targets.is_set
    load_model_checkpoint(fresh, str(path))  # strict
    assert torch.equal(fresh.vocabulary_token_ids(),
                       data_model.vocabulary_token_ids())
    with torch.no_grad():
        torch.testing.assert_close(fresh.vocabulary_embeddings(), expected)

    # a checkpoint with another subset length replaces a set subset, and
    # the cached embeddings follow it
    other = tiny_model_builder(vocabulary='data')
    other.set_vocabulary([5, 6, 7])
    fresh.load_state_dict(other.state_dict())
    assert len(fresh.vocabulary_token_ids()) == len(
        other.vocabulary_token_ids())
    with torch.no_grad():
        assert fresh.vocabulary_embeddings().shape[0] == len(
            other.vocabulary_token_ids())


def test_setting_the_subset_invalidates_cached_embeddings(
        tiny_model_builder):
    """Eval mode caches the vocabulary embeddings; a new subset (even of
    the same size) must not be served the old subset's rows."""
    model = tiny_model_builder(vocabulary='data').eval()
    model.set_vocabulary([5, 6, 7])
    with torch.no_grad():
        first = model.vocabulary_embeddings()
        assert model.vocabulary_embeddings() is first  # cached
        model.set_vocabulary([8, 9, 10])  # same size, other tokens
        second = model.vocabulary_embeddings()
    # what a model that only ever had the second subset computes
    expected_model = tiny_model_builder(vocabulary='data').eval()
    expected_model.set_vocabulary([8, 9, 10])
    with torch.no_grad():
        expected = expected_model.vocabulary_embeddings()
    assert second.shape == first.shape
    torch.testing.assert_close(second, expected)
    assert not torch.allclose(second, first)
