# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A tiny Uni-Perceiver v2 (stub image encoder, 2-layer RoBERTa and MoE
decoder) and batches of every task, for the task tests."""
from typing import Callable, List, Optional, Set

import pytest
import torch
from mmengine.structures import InstanceData

import mmupv2.testing  # noqa: F401  (registers StubImageEncoder)
from mmupv2.models import UniPerceiverV2
from mmupv2.structures import UPv2DataSample

CLASSES = ['circle', 'square', ['triangle', 'three-sided shape'], 'star']
TEXTS = ('a red circle on the left', 'a big green star')
#: the shared parts that an image task's loss must reach
SHARED_PARTS = frozenset({
    'image_encoder', 'text_encoder', 'decoder.image_proj', 'decoder.text_proj',
    'decoder.modality_embed', 'decoder.spe_token', 'decoder.layers',
    'decoder.norm'
})


#: the tiny text encoder: a 2-layer RoBERTa over the shapes tokenizer
TINY_TEXT_CONFIG = dict(
    model_type='roberta',
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=96,
    max_position_embeddings=40)


def build_tiny_model(tokenizer: str,
                     text_config: Optional[dict] = None,
                     **kwargs) -> UniPerceiverV2:
    """The tiny model over ``tokenizer`` (a folder or ``package://``),
    seeded, so two calls give the same weights; ``kwargs`` go to
    ``UniPerceiverV2`` (e.g. ``vocabulary='data'``)."""
    torch.manual_seed(0)
    return UniPerceiverV2(
        image_encoder=dict(
            type='StubImageEncoder', embed_dims=32, num_regions=6),
        text_encoder=dict(
            type='HFTextEncoder',
            tokenizer=tokenizer,
            load_pretrained=False,
            max_length=32,
            hf_config=text_config or TINY_TEXT_CONFIG),
        decoder=dict(
            type='UnifiedDecoder',
            embed_dims=64,
            num_layers=2,
            num_heads=4,
            feedforward_channels=128,
            image_in_dims=32),
        tasks=dict(
            classification=dict(type='ClassificationTask', classes=CLASSES),
            detection=dict(type='DetectionTask', classes=CLASSES),
            instance_segmentation=dict(
                type='InstanceSegmentationTask', classes=CLASSES),
            captioning=dict(type='CaptioningTask', max_length=8),
            retrieval=dict(type='RetrievalTask'),
            mlm=dict(type='MLMTask')),
        **kwargs)


@pytest.fixture
def tiny_model(shapes_root) -> UniPerceiverV2:
    return build_tiny_model(f'{shapes_root}/tokenizer')


@pytest.fixture
def tiny_model_builder(shapes_root) -> Callable[..., UniPerceiverV2]:
    """``builder(tokenizer=None, text_config=None, **model_kwargs)``: the
    tiny model (same weights as ``tiny_model``), over the shapes tokenizer
    by default."""

    def build(tokenizer: Optional[str] = None, **kwargs) -> UniPerceiverV2:
        return build_tiny_model(tokenizer or f'{shapes_root}/tokenizer',
                                **kwargs)

    return build


def make_samples(task: str, num: int = 2,
                 num_objects: int = 2) -> List[UPv2DataSample]:
    """Samples of ``task`` for 64x64 batches holding 64x48 images resized
    by 0.5 from 128x96 originals."""
    samples = []
    for i in range(num):
        sample = UPv2DataSample(
            metainfo=dict(
                img_shape=(64, 48),
                ori_shape=(128, 96),
                scale_factor=(0.5, 0.5),
                batch_input_shape=(64, 64)))
        sample.set_task(task).set_gt_label(i % len(CLASSES))
        boxes = torch.tensor([[2., 3., 30., 40.], [10., 10., 20., 20.],
                              [5., 5., 40., 60.]])[:num_objects]
        sample.gt_instances = InstanceData(
            bboxes=boxes,
            labels=torch.arange(num_objects) % len(CLASSES),
            masks=torch.zeros(num_objects, 64, 48, dtype=torch.bool))
        sample.set_gt_caption(['a red circle on the left', 'a blue square'])
        sample.set_text(TEXTS[i % len(TEXTS)])
        samples.append(sample)
    return samples


@pytest.fixture
def samples() -> Callable[..., List[UPv2DataSample]]:
    return make_samples


@pytest.fixture
def images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 64, 64, generator=gen)


def modules_with_grad(model: torch.nn.Module) -> Set[str]:
    """Names of the parts (``image_encoder``, ``text_encoder``,
    ``decoder.<child>``, ``tasks.<task>``) with a nonzero gradient."""
    parts = set()
    for name, param in model.named_parameters():
        if param.grad is None or not bool(param.grad.abs().sum() > 0):
            continue
        words = name.split('.')
        depth = 2 if words[0] in ('decoder', 'tasks') else 1
        parts.add('.'.join(words[:depth]))
    return parts


@pytest.fixture
def shared_parts() -> frozenset:
    return SHARED_PARTS


@pytest.fixture
def grad_parts() -> Callable[[torch.nn.Module], Set[str]]:
    return modules_with_grad
