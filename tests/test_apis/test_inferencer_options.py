# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Per-call options are ``model.predict`` arguments: ``classes=`` /
``labels=`` / ``beam_size=`` leave every task head as it was (its class
names, beam size, parameters and buffers), and two calls with different
class lists each answer in their own list."""
import copy
import warnings

import mmcv
import pytest
import torch

from mmupv2.apis import UniPerceiverInferencer

#: What a head keeps between calls besides its tensors.
HEAD_ATTRIBUTES = ('classes', 'beam_size', 'max_length')


def _head_state(model) -> dict:
    """Every head's attributes of :data:`HEAD_ATTRIBUTES` and its
    parameters and buffers (copies)."""
    state = {}
    for task, head in model.tasks.items():
        for name in HEAD_ATTRIBUTES:
            if hasattr(head, name):
                state[f'{task}.{name}'] = copy.deepcopy(getattr(head, name))
        for name, tensor in head.state_dict(keep_vars=False).items():
            state[f'{task}.{name}'] = tensor.detach().clone()
    return state


def _assert_same_state(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(after[key], value, rtol=0, atol=0,
                                       msg=key)
        else:
            assert after[key] == value, key


@pytest.fixture
def predict_calls(inferencer, monkeypatch):
    """The options of every ``model.predict`` call, and each head's class
    names at the moment of the call."""
    calls = []
    model = inferencer.model
    predict = model.predict

    def spy(inputs, data_samples, **options):
        task = data_samples[0].metainfo['task']
        calls.append(
            dict(
                task=task,
                options=options,
                head_classes=copy.deepcopy(
                    getattr(model.tasks[task], 'classes', None))))
        return predict(inputs, data_samples, **options)

    monkeypatch.setattr(model, 'predict', spy)
    return calls


def test_options_leave_the_heads_unchanged(inferencer, image_paths,
                                           predict_calls):
    before = _head_state(inferencer.model)
    img = mmcv.imread(image_paths[0])
    inferencer.detect(img, classes=['a', ['b', 'bee']])
    inferencer.segment(img, classes=['goldfish'])
    inferencer.classify(img, labels=['cat', 'dog', 'fox'])
    inferencer.caption(img, beam_size=1)
    inferencer(img, task='classify', classes=['x', 'y'])
    inferencer(img, task='caption', beam_size=3)
    _assert_same_state(before, _head_state(inferencer.model))

    # the options reached predict as arguments, the heads never saw them
    options = [(c['task'], c['options']) for c in predict_calls]
    assert options == [
        ('detection', dict(classes=[['a'], ['b', 'bee']])),
        ('instance_segmentation', dict(classes=[['goldfish']])),
        ('classification', dict(classes=[['cat'], ['dog'], ['fox']])),
        ('captioning', dict(beam_size=1)),
        ('classification', dict(classes=[['x'], ['y']])),
        ('captioning', dict(beam_size=3)),
    ]
    for call in predict_calls:
        task = call['task']
        assert call['head_classes'] == before.get(f'{task}.classes')


def test_two_class_lists_give_their_own_results(inferencer, image_paths):
    img = mmcv.imread(image_paths[0])
    first = inferencer.detect(img, classes=['goldfish', 'tench'])
    second = inferencer.detect(img, classes=['cat', 'dog', 'fox'])
    assert first.metainfo['classes'] == ('goldfish', 'tench')
    assert second.metainfo['classes'] == ('cat', 'dog', 'fox')
    assert int(first.pred_instances.labels.max()) < 2
    assert set(first.pred_instances.label_names) <= {'goldfish', 'tench'}
    assert set(second.pred_instances.label_names) <= {'cat', 'dog', 'fox'}
    assert int(second.pred_instances.labels.max()) < 3

    # classification: the scores follow the list, in its order
    cat_dog = inferencer.classify(img, labels=['cat', 'dog'])
    dog_cat = inferencer.classify(img, labels=['dog', 'cat'])
    three = inferencer.classify(img, labels=['cat', 'dog', 'fox'])
    assert cat_dog.pred_score.shape == (2, ) and three.pred_score.shape == (
        3, )
    torch.testing.assert_close(dog_cat.pred_score, cat_dog.pred_score.flip(0))
    assert dog_cat.pred_class == cat_dog.pred_class
    # the same first two names, a third one added: their ratio is kept
    torch.testing.assert_close(
        three.pred_score[0] / three.pred_score[1],
        cat_dog.pred_score[0] / cat_dog.pred_score[1],
        rtol=1e-4,
        atol=1e-6)
    # and the defaults afterwards
    assert inferencer.classify(img).pred_score.shape == (7, )


def test_checkpoint_classes_are_not_written_into_the_heads(
        tiny_config, checkpoint, inferencer, image_paths):
    """``class_names='checkpoint'`` makes the checkpoint's names the
    defaults of the inferencer; the model's heads keep the config's."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        loaded = UniPerceiverInferencer(
            tiny_config, weights=checkpoint, class_names='checkpoint')
    _assert_same_state(_head_state(inferencer.model),
                       _head_state(loaded.model))
    assert loaded.classes('detect') == ['goldfish', 'tench', 'shark']
    sample = loaded.detect(image_paths[0])
    assert sample.metainfo['classes'] == ('goldfish', 'tench', 'shark')
    _assert_same_state(_head_state(inferencer.model),
                       _head_state(loaded.model))


def test_unknown_option_is_a_type_error(inferencer, image_paths):
    """The engine hands options to ``model.predict`` unchanged, which
    rejects those the task does not have."""
    with pytest.raises(TypeError):
        inferencer.predict_images('captioning', image_paths[:1], 1,
                                  classes=['a'])
    with pytest.raises(TypeError):
        inferencer.predict_images('classification', image_paths[:1], 1,
                                  beam_size=2)
