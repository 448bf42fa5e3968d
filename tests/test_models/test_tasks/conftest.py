# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The tiny Uni-Perceiver v2 (``configs/_base_/models/upv2_tiny.py``, with
the stub image encoder), batches of every task, and Eq. 5-7 written out by hand
(:class:`Reference`) for the value-level tests of the task heads."""
from typing import Callable, List, Optional, Sequence, Set

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch import Tensor

import mmupv2.testing  # noqa: F401  (registers StubImageEncoder)
from mmupv2.models import UniPerceiverV2
from mmupv2.models.decoders import TokenSegment
from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

from ..tiny_shapes_model import STUB_IMAGE_ENCODER, tiny_model_cfg

CLASSES = ['circle', 'square', ['triangle', 'three-sided shape'], 'star']
TEXTS = ('a red circle on the left', 'a big green star')
#: the shared parts that an image task's loss must reach
SHARED_PARTS = frozenset({
    'image_encoder', 'text_encoder', 'decoder.image_proj', 'decoder.text_proj',
    'decoder.modality_embed', 'decoder.spe_token', 'decoder.layers',
    'decoder.norm'
})


def build_tiny_model(tokenizer: str,
                     text_config: Optional[dict] = None,
                     **kwargs) -> UniPerceiverV2:
    """The tiny model (``configs/_base_/models/upv2_tiny.py``) with the stub
    image encoder, a 96-wide RoBERTa, the test class names (one with a
    synonym) and 8-token captions, over ``tokenizer`` (a folder or
    ``package://``) and, if given, another Hugging Face ``text_config``;
    seeded, so two calls give the same weights. ``kwargs`` go to
    ``UniPerceiverV2`` (e.g. ``vocabulary='data'``)."""
    # a text width other than the decoder's (128): ``decoder.text_proj`` is
    # then a layer that the losses must reach
    text_encoder = dict(tokenizer=tokenizer, max_length=32,
                        hf_config=dict(hidden_size=96))
    if text_config is not None:
        text_encoder['hf_config'] = dict(_delete_=True, **text_config)
    cfg = tiny_model_cfg(
        image_encoder=STUB_IMAGE_ENCODER,
        text_encoder=text_encoder,
        tasks=dict(
            classification=dict(classes=CLASSES),
            detection=dict(classes=CLASSES),
            instance_segmentation=dict(classes=CLASSES),
            captioning=dict(max_length=8)),
        **kwargs)
    torch.manual_seed(0)
    # the data preprocessor is built by mmengine's registry: in our scope
    with DefaultScope.overwrite_default_scope('mmupv2'):
        return MODELS.build(cfg)


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


class Reference:
    """The unified formulation computed by hand, independently of the task
    heads: each text is encoded alone (no padding, no batching with other
    texts), the image tokens are laid out explicitly, the logits and the
    cross-entropy are written out. A value-level test compares a head's
    loss or prediction with these.

    Run the model in eval mode (no dropout, drop-path or gate noise), so
    the head and the reference see the same network.
    """

    #: Uni-Perceiver v1's cap of the logit scale
    MAX_SCALE = 100.0

    @classmethod
    def scaled_cosine(cls, queries: Tensor, targets: Tensor,
                      logit_scale: Tensor) -> Tensor:
        """Eq. 6: (..., D) x (N, D) -> (..., N) ``cos(q, t) *
        min(exp(logit_scale), 100)``."""
        q = queries / queries.norm(dim=-1, keepdim=True)
        t = targets / targets.norm(dim=-1, keepdim=True)
        return q @ t.T * min(float(logit_scale.exp()), cls.MAX_SCALE)

    @staticmethod
    def cross_entropy(logits: Tensor, labels: Sequence[int]) -> Tensor:
        """Mean of ``-log softmax(logits_i)[labels_i]`` over the rows of
        logits (N, C)."""
        logp = logits - logits.logsumexp(-1, keepdim=True)
        return -torch.stack(
            [logp[i, int(label)] for i, label in enumerate(labels)]).mean()

    @staticmethod
    def token_ids(model: UniPerceiverV2, text: str) -> Tensor:
        """(1, L) the ids of one text with its begin and end tokens."""
        return torch.tensor([model.text_encoder.tokenizer(text)['input_ids']])

    @classmethod
    def text_hidden(cls, model: UniPerceiverV2, ids: Tensor,
                    attribute: str) -> Tensor:
        """(L + 1, D) the decoder's outputs (``<SPE>`` first) of one
        tokenised text (1, L), run alone through the text encoder."""
        feats = model.text_encoder(ids, torch.ones_like(ids))
        return model.decoder([TokenSegment(feats, 'text',
                                           attribute)]).hidden_states[0]

    @classmethod
    def text_spe(cls, model: UniPerceiverV2, text: str,
                 attribute: str = 'text_target') -> Tensor:
        """(D,) the ``<SPE>`` output of one text, alone."""
        return cls.text_hidden(model, cls.token_ids(model, text),
                               attribute)[0]

    @staticmethod
    def vocabulary(model: UniPerceiverV2) -> Tensor:
        """(V, D) every token id ``v`` of the tokenizer encoded as the text
        ``[begin, v, end]`` with the ``'vocab_target'`` attribute."""
        enc = model.text_encoder
        ids = torch.arange(len(enc.tokenizer))
        ids = torch.stack([
            torch.full_like(ids, enc.begin_token_id), ids,
            torch.full_like(ids, enc.end_token_id)
        ], 1)
        feats = enc(ids, torch.ones_like(ids))
        return model.decoder([TokenSegment(feats, 'text',
                                           'vocab_target')]).spe

    @staticmethod
    def image_segment(model: UniPerceiverV2, images: Tensor,
                      samples: list, attribute: str) -> TokenSegment:
        """``[global tokens; regional tokens]`` (Eq. 1) of the image
        encoder's output, with the global padding mask."""
        enc = model.image_encoder(images, samples)
        tokens = torch.cat([enc.global_tokens, enc.regional_tokens], 1)
        padding = torch.cat([
            enc.global_padding_mask.bool(),
            torch.zeros(enc.regional_tokens.shape[:2], dtype=torch.bool)
        ], 1)
        return TokenSegment(tokens, 'image', attribute, padding_mask=padding)

    @classmethod
    def image_spe(cls, model: UniPerceiverV2, images: Tensor, samples: list,
                  attribute: str = 'image_input') -> Tensor:
        """(B, D) the ``<SPE>`` outputs of the images."""
        seg = cls.image_segment(model, images, samples, attribute)
        return model.decoder([seg]).spe


@pytest.fixture
def ref() -> type:
    return Reference
