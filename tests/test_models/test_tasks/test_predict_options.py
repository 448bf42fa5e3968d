# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Per-call prediction options: ``model.predict(inputs, samples,
**options)`` changes the call, never the model."""
import copy

import pytest
import torch

from .conftest import CLASSES

OTHER = ['red', ['green', 'lime'], 'blue']


def _predict(model, images, batch, **options):
    with torch.no_grad():
        return model.predict(images, batch, **options)


@pytest.mark.parametrize(
    'task', ['classification', 'detection', 'instance_segmentation'])
def test_classes_for_one_call(task, tiny_model, images, samples):
    """``classes=`` gives what ``set_classes`` on a copy gives, and leaves
    the head's class names as they were."""
    tiny_model.eval()
    head = tiny_model.tasks[task]
    before = copy.deepcopy(head.classes)
    reference = copy.deepcopy(tiny_model)
    reference.set_classes(task, OTHER)
    got = _predict(tiny_model, images, samples(task), classes=OTHER)
    want = _predict(reference, images, samples(task))
    assert head.classes == before
    for g, w in zip(got, want):
        if task == 'classification':
            assert g.pred_score.shape == (len(OTHER), )
            torch.testing.assert_close(g.pred_score, w.pred_score)
        else:
            assert int(g.pred_instances.labels.max()) < len(OTHER)
            torch.testing.assert_close(g.pred_instances.scores,
                                       w.pred_instances.scores)
            assert torch.equal(g.pred_instances.labels,
                               w.pred_instances.labels)
            torch.testing.assert_close(g.pred_instances.bboxes,
                                       w.pred_instances.bboxes)
    # and the next call without the option is the head's own label space
    plain = _predict(tiny_model, images, samples(task))
    if task == 'classification':
        assert plain[0].pred_score.shape == (len(CLASSES), )
    # the per-call names are cached by text, as the head's own
    misses = tiny_model.target_cache.misses
    _predict(tiny_model, images, samples(task), classes=OTHER)
    assert tiny_model.target_cache.misses == misses


def test_beam_size_and_max_length_for_one_call(tiny_model, images, samples,
                                               monkeypatch):
    """The options reach the search for this call only; the captions are
    those of ``generate`` with the same settings."""
    from mmupv2.models.tasks import captioning
    tiny_model.eval()
    head = tiny_model.tasks['captioning']
    saved = (head.beam_size, head.max_length)
    seen = []
    search = captioning.beam_search

    def spy(stepper, **kwargs):
        seen.append((kwargs['beam_size'], kwargs['max_length']))
        return search(stepper, **kwargs)

    monkeypatch.setattr(captioning, 'beam_search', spy)
    with torch.no_grad():
        ids = head.generate(tiny_model, images, samples('captioning'),
                            beam_size=3, max_length=4)
    end = tiny_model.special_tokens.end_id
    expected = [
        tiny_model.detokenize(row[:row.index(end)] if end in row else row)
        for row in ids.tolist()
    ]
    out = _predict(tiny_model, images, samples('captioning'), beam_size=3,
                   max_length=4)
    assert [s.pred_caption for s in out] == expected
    _predict(tiny_model, images, samples('captioning'))
    assert seen == [(3, 4), (3, 4), saved]
    assert (head.beam_size, head.max_length) == saved
    for bad in (dict(beam_size=0), dict(max_length=0), dict(beam_size=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _predict(tiny_model, images, samples('captioning'), **bad)


@pytest.mark.parametrize('task,option', [('classification', 'beam_size'),
                                         ('captioning', 'classes'),
                                         ('retrieval', 'classes'),
                                         ('detection', 'topk')])
def test_unknown_option_names_the_option_and_the_task(task, option,
                                                      tiny_model, images,
                                                      samples):
    tiny_model.eval()
    with pytest.raises(TypeError, match=f"{task}.*'{option}'") as error:
        _predict(tiny_model, images, samples(task), **{option: 1})
    assert f"task '{task}'" in str(error.value)


def test_forward_predicts_without_options(tiny_model, images, samples):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(images, samples('classification'), mode='predict')
    assert out[0].pred_score.shape == (len(CLASSES), )
    options = {
        task: head.predict_options()
        for task, head in tiny_model.tasks.items()
    }
    assert options == dict(
        classification=('classes', ), detection=('classes', ),
        instance_segmentation=('classes', ),
        captioning=('beam_size', 'max_length'), retrieval=(), mlm=())
