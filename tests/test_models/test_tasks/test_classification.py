# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.tasks import ClassificationTask

from .conftest import CLASSES


def test_loss_and_gradients(tiny_model, images, samples, grad_parts,
                            shared_parts):
    tiny_model.train()
    losses = tiny_model(images, samples('classification'), mode='loss')
    assert set(losses) == {'classification.loss_cls'}
    assert torch.isfinite(losses['classification.loss_cls'])
    losses['classification.loss_cls'].backward()
    assert grad_parts(tiny_model) == shared_parts | {'tasks.classification'}


def test_predict(tiny_model, images, samples):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(images, samples('classification'), mode='predict')
    for sample in out:
        assert sample.pred_score.shape == (4, )
        torch.testing.assert_close(sample.pred_score.sum(), torch.tensor(1.))
        assert sample.pred_label.tolist() == [int(sample.pred_score.argmax())]


def test_loss_and_scores_equal_a_hand_computation(tiny_model, images,
                                                  samples, ref):
    """Eq. 6-7 by hand: every class name (first synonym, in the order of
    ``CLASSES``) encoded alone, the images' ``<SPE>`` outputs, the scaled
    cosine; the loss is the cross-entropy with the labels set here and
    ``pred_score`` the softmax of the same logits, class by class."""
    tiny_model.eval()  # no dropout: the head and the reference agree
    labels = [2, 1]
    batch = samples('classification')
    for sample, label in zip(batch, labels):
        sample.set_gt_label(label)
    task = tiny_model.tasks['classification']
    with torch.no_grad():
        queries = ref.image_spe(tiny_model, images, batch)
        names = [c if isinstance(c, str) else c[0] for c in CLASSES]
        targets = torch.stack([ref.text_spe(tiny_model, n) for n in names])
        logits = ref.scaled_cosine(queries, targets,
                                   task.similarity.logit_scale)
        loss = tiny_model(images, batch, 'loss')['classification.loss_cls']
        out = tiny_model(images, samples('classification'), 'predict')
    tol = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, ref.cross_entropy(logits, labels), **tol)
    # the labels matter: a loss with other labels would differ
    assert abs(float(ref.cross_entropy(logits, [0, 0])) - float(loss)) > 1e-3
    for sample, row in zip(out, logits):
        torch.testing.assert_close(sample.pred_score, row.softmax(-1), **tol)
        assert sample.pred_label.tolist() == [int(row.argmax())]


def _scores(model, images, samples):
    with torch.no_grad():
        out = model(images, samples('classification'), mode='predict')
    return torch.stack([s.pred_score for s in out])


def test_cached_targets_give_identical_predictions(tiny_model, images,
                                                   samples):
    tiny_model.eval()
    cache = tiny_model.target_cache
    first = _scores(tiny_model, images, samples)
    assert (cache.misses, cache.hits) == (1, 0)
    second = _scores(tiny_model, images, samples)
    assert (cache.misses, cache.hits) == (1, 1)
    assert torch.equal(first, second)
    cache.clear()
    torch.testing.assert_close(_scores(tiny_model, images, samples), first)


def test_cache_invalidated_by_weight_changes(tiny_model, images, samples):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    tiny_model.eval()
    before = _scores(tiny_model, images, samples)
    # one optimizer step (the model stays in eval mode: no train() hook)
    optim = torch.optim.AdamW(tiny_model.parameters(), lr=1e-2)
    tiny_model.train()
    tiny_model(images, samples('classification'), 'loss')[
        'classification.loss_cls'].backward()
    tiny_model.eval()
    optim.step()
    misses = tiny_model.target_cache.misses
    after = _scores(tiny_model, images, samples)
    assert tiny_model.target_cache.misses == misses + 1
    assert not torch.allclose(before, after)
    # load_state_dict writes the old weights back in place
    tiny_model.load_state_dict(state)
    torch.testing.assert_close(_scores(tiny_model, images, samples), before)
    assert tiny_model.target_cache.misses == misses + 2


def test_open_vocabulary(tiny_model, images, samples):
    tiny_model.eval()
    tiny_model.set_classes('classification', ['red', 'green', 'blue'])
    with torch.no_grad():
        out = tiny_model(images, samples('classification'), mode='predict')
    assert out[0].pred_score.shape == (3, )


def test_synonyms_sampled_in_training_only():
    task = ClassificationTask(classes=['a', ['b', 'c']])
    assert task.class_texts(sample_synonyms=False) == ['a', 'b']
    torch.manual_seed(0)
    seen = {task.class_texts(sample_synonyms=True)[1] for _ in range(20)}
    assert seen == {'b', 'c'}


@pytest.mark.parametrize('classes', ['cat', [], ['cat', []], ['cat', 3]])
def test_bad_class_names(classes):
    with pytest.raises(ValueError, match='classes'):
        ClassificationTask(classes=classes)


def test_missing_class_names(tiny_model, images, samples):
    tiny_model.tasks['classification'].classes = None
    with pytest.raises(RuntimeError, match='set_classes'):
        tiny_model(images, samples('classification'), mode='loss')


def test_checkpointed_targets_give_the_same_gradients(tiny_model, images,
                                                      samples):
    tiny_model.train()
    grads = []
    for checkpointed in (True, False):
        tiny_model.checkpoint_targets = checkpointed
        tiny_model.zero_grad()
        torch.manual_seed(0)  # same dropout / drop-path / gate noise
        tiny_model(images, samples('classification'),
                   'loss')['classification.loss_cls'].backward()
        grads.append({
            name: p.grad.clone()
            for name, p in tiny_model.named_parameters()
            if p.grad is not None
        })
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name])


@pytest.mark.parametrize('chunk,expected', [(2, 2), (4096, 0)])
def test_auto_checkpoints_only_more_than_one_chunk(tiny_model, images,
                                                   samples, monkeypatch,
                                                   chunk, expected):
    """``checkpoint_targets='auto'``: the 4 class names are checkpointed
    (in 2 chunks) when they exceed one chunk of 2, not within one of 4096;
    the gradients equal those of ``checkpoint_targets=False``."""
    from mmupv2.models import uniperceiver_v2
    calls = []
    checkpoint = uniperceiver_v2.checkpoint
    monkeypatch.setattr(uniperceiver_v2, 'checkpoint',
                        lambda fn, *a, **k: calls.append(1) or checkpoint(
                            fn, *a, **k))
    tiny_model.train()
    tiny_model.target_chunk_size = chunk
    grads = []
    for mode in ('auto', False):
        tiny_model.checkpoint_targets = mode
        tiny_model.zero_grad()
        torch.manual_seed(0)
        tiny_model(images, samples('classification'),
                   'loss')['classification.loss_cls'].backward()
        grads.append({n: p.grad.clone()
                      for n, p in tiny_model.named_parameters()
                      if p.grad is not None})
        if mode == 'auto':
            assert len(calls) == expected
    for name, grad in grads[1].items():
        torch.testing.assert_close(grads[0][name], grad)


def test_checkpoint_targets_must_be_a_known_mode(tiny_model_builder):
    with pytest.raises(ValueError, match="checkpoint_targets must be True"):
        tiny_model_builder(checkpoint_targets='always')
