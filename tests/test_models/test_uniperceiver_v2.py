# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The top-level model built from a config, as mmdet's detector tests:
dispatch on the task, task-prefixed losses, a train step through mmdet's
data preprocessor, predictions."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

import mmupv2.testing  # noqa: F401  (registers StubImageEncoder)
from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

from .tiny_shapes_model import STUB_IMAGE_ENCODER, tiny_model_cfg

CLASSES = ['circle', 'square', 'triangle']


@pytest.fixture
def model(shapes_root):
    """The tiny model with mmdet's data preprocessor (as mmdet's detector
    tests), the stub image encoder (4 regions) and three of its heads."""
    torch.manual_seed(0)
    return MODELS.build(
        tiny_model_cfg(
            data_preprocessor=dict(
                type='mmdet.DetDataPreprocessor', pad_size_divisor=16),
            image_encoder=dict(STUB_IMAGE_ENCODER, num_regions=4,
                               num_global_pools=1),
            text_encoder=dict(tokenizer=f'{shapes_root}/tokenizer',
                              max_length=24),
            tasks=dict(
                _delete_=True,
                classification=dict(type='ClassificationTask',
                                    classes=CLASSES),
                detection=dict(type='DetectionTask', classes=CLASSES),
                mlm=dict(type='MLMTask'))))


def _batch(task, num=2):
    samples = []
    for i in range(num):
        sample = UPv2DataSample(
            metainfo=dict(img_shape=(40, 48), ori_shape=(40, 48),
                          scale_factor=(1., 1.)))
        sample.set_task(task).set_gt_label(i).set_text('a red circle')
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 4., 20., 30.]]),
            labels=torch.tensor([i]))
        samples.append(sample)
    images = [torch.randint(0, 255, (3, 40, 48), dtype=torch.uint8)
              for _ in range(num)]
    return dict(inputs=images, data_samples=samples)


def _fixed_batch_loss(model, data, task) -> float:
    """The task's summed loss on a preprocessed batch, without dropout
    (detection asks the image encoder for its matching in any mode)."""
    model.eval()
    with torch.no_grad():
        losses = model(**data, mode='loss')
    model.train()
    return float(sum(v for k, v in losses.items() if k.startswith(task)))


@pytest.mark.parametrize('task', ['classification', 'detection'])
def test_train_step(model, task):
    """``train_step`` through the data preprocessor: task-prefixed log
    variables, every trained part moves, and the loss on the fixed batch
    falls."""
    torch.manual_seed(0)
    batch = _batch(task)
    data = model.data_preprocessor(batch, False)
    before = _fixed_batch_loss(model, data, task)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    for _ in range(5):
        log_vars = model.train_step(batch, optim)
    assert f'{task}.loss_cls' in log_vars and 'loss' in log_vars
    assert all(k == 'loss' or k.startswith(f'{task}.') for k in log_vars)
    moved = {
        n.split('.')[0]
        for n, p in model.named_parameters()
        if not torch.equal(p, weights[n])
    }
    assert {'image_encoder', 'text_encoder', 'decoder', 'tasks'} <= moved
    assert not torch.equal(
        model.tasks[task].similarity.logit_scale,
        weights[f'tasks.{task}.similarity.logit_scale'])
    after = _fixed_batch_loss(model, data, task)
    assert after < before - 0.05, (before, after)


def test_predict_after_preprocessing(model):
    out = model.test_step(_batch('classification'))
    assert out[0].pred_score.shape == (3, )
    out = model.test_step(_batch('detection'))
    assert out[0].pred_instances.bboxes.shape == (4 * 3, 4)


def test_text_only_batch(model):
    model.train()
    samples = _batch('mlm')['data_samples']
    losses = model(None, samples, mode='loss')
    assert set(losses) == {'mlm.loss_mlm'}


def test_tensor_mode(model):
    data = model.data_preprocessor(_batch('classification'), False)
    logits = model(**data, mode='tensor')
    assert logits.shape == (2, 3)


def test_dispatch_errors(model):
    data = model.data_preprocessor(_batch('classification'), False)
    mixed = data['data_samples']
    mixed[1].set_task('detection')
    with pytest.raises(ValueError, match='one task'):
        model(data['inputs'], mixed, mode='loss')
    with pytest.raises(KeyError, match='captioning'):
        model(data['inputs'], _batch('captioning')['data_samples'], 'loss')
    with pytest.raises(ValueError, match='mode'):
        model(data['inputs'], _batch('classification')['data_samples'],
              'logits')
    with pytest.raises(ValueError, match='image tensor'):
        model(None, _batch('classification')['data_samples'], 'loss')
    with pytest.raises(ValueError, match='data_samples'):
        model(data['inputs'], None, 'loss')


def test_config_errors(model):
    cfg = dict(image_encoder=model.image_encoder,
               text_encoder=model.text_encoder, decoder=model.decoder)
    from mmupv2.models import UniPerceiverV2
    with pytest.raises(KeyError, match='unknown task'):
        UniPerceiverV2(**cfg, tasks=dict(vqa=dict(type='MLMTask')))
    with pytest.raises(ValueError, match='implements'):
        UniPerceiverV2(**cfg, tasks=dict(detection=dict(type='MLMTask')))
    with pytest.raises(ValueError, match='at least one task'):
        UniPerceiverV2(**cfg, tasks={})


def test_set_classes_is_open_vocabulary(model):
    model.set_classes('detection', ['dog', 'cat'])
    out = model.test_step(_batch('detection'))
    assert int(out[0].pred_instances.labels.max()) < 2
    with pytest.raises(TypeError, match='no class names'):
        model.set_classes('mlm', ['x'])
