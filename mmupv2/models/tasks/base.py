# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What every task of the unified formulation shares (paper Sec. 4.3)."""
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmupv2.models.decoders import TokenSegment
from mmupv2.models.image_encoders import ImageEncoderOutput
from mmupv2.structures import UPv2DataSample

from .similarity import ScaledCosineSimilarity

if TYPE_CHECKING:
    from mmupv2.models.uniperceiver_v2 import UniPerceiverV2

SampleList = List[UPv2DataSample]
ClassNames = Sequence[Union[str, Sequence[str]]]

#: Which image tokens a non-localization task feeds the decoder (the
#: ablation of paper Table 2 drops one kind).
IMAGE_TOKENS = ('all', 'global', 'regional')


def image_segment(enc: ImageEncoderOutput,
                  attribute: str,
                  image_tokens: str = 'all') -> TokenSegment:
    """The image part of a decoder input: ``f_image(x) = [global tokens;
    regional tokens]`` (Eq. 1) or one of the two.

    Args:
        enc: the image encoder's output; global tokens (B, G, C) with their
            padding mask, regional tokens (B, O, C).
        attribute: MoE attribute of the segment.
        image_tokens: ``'all'``, ``'global'`` or ``'regional'``.

    Returns:
        TokenSegment: tokens (B, G + O, C) (or one part), the padding mask.
    """
    if image_tokens not in IMAGE_TOKENS:
        raise ValueError(f'image_tokens must be one of {IMAGE_TOKENS}, got '
                         f'{image_tokens!r}')
    regional_pad = enc.global_padding_mask.new_zeros(
        enc.regional_tokens.shape[:2])
    parts = []
    if image_tokens in ('all', 'global'):
        parts.append((enc.global_tokens, enc.global_padding_mask.bool()))
    if image_tokens in ('all', 'regional'):
        parts.append((enc.regional_tokens, regional_pad.bool()))
    tokens = torch.cat([p[0] for p in parts], dim=1)
    padding = torch.cat([p[1] for p in parts], dim=1)
    return TokenSegment(tokens, 'image', attribute, padding_mask=padding)


def normalize_class_names(classes: ClassNames) -> List[List[str]]:
    """``['cat', ['dog', 'puppy']]`` -> ``[['cat'], ['dog', 'puppy']]``;
    raises a ``ValueError`` naming the bad entry otherwise."""
    if isinstance(classes, str) or not len(classes):
        raise ValueError('classes must be a non-empty list of names (or of '
                         f'lists of synonyms), got {classes!r}')
    out = []
    for i, names in enumerate(classes):
        names = [names] if isinstance(names, str) else names
        if (not isinstance(names, (list, tuple)) or not names
                or not all(isinstance(n, str) and n for n in names)):
            raise ValueError(f'classes[{i}] must be a name or a non-empty '
                             f'list of names, got {classes[i]!r}')
        out.append(list(names))
    return out


class BaseTask(BaseModule):
    """A task of the unified formulation: inputs and targets go through the
    shared encoders and decoder (owned by
    :class:`~mmupv2.models.UniPerceiverV2`, passed in as ``model``) and are
    compared by Eq. 6 with this task's own temperature; the loss is Eq. 7.

    Each subclass implements ``forward(model, inputs, data_samples)`` (raw
    outputs), ``loss(model, inputs, data_samples)`` (a dict
    of losses, keys without the task prefix; the model adds it) and
    ``predict(model, inputs, data_samples)`` (the samples with predictions).
    The only parameter a task owns is its ``logit_scale`` (v1 keeps one per
    task type), so a batch of one task leaves the other tasks' untouched.

    Args:
        init_temperature: initial tau of Eq. 6 (v1: 0.07).
        max_logit_scale: cap of ``1 / tau`` (v1: 100).
        loss_weight: multiplies the task's decoder loss (``w_k`` of Eq. 7;
            with MT-AdamW the per-task scale is the optimizer's ``omega_k``
            and this stays 1).
        init_cfg: mmengine init config.
    """
    #: the task name, one of :data:`mmupv2.structures.TASKS`
    task: str = ''

    def __init__(self,
                 *,
                 init_temperature: float = 0.07,
                 max_logit_scale: float = 100.0,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.similarity = ScaledCosineSimilarity(init_temperature,
                                                 max_logit_scale)
        self.loss_weight = loss_weight

    def forward(self, model: 'UniPerceiverV2', inputs: Optional[Tensor],
                data_samples: SampleList):
        """The task's raw outputs (``mode='tensor'``)."""
        raise NotImplementedError

    def loss(self, model: 'UniPerceiverV2', inputs: Optional[Tensor],
             data_samples: SampleList) -> Dict[str, Tensor]:
        """The task's losses on a batch.

        Args:
            model (UniPerceiverV2): the shared encoders and decoder.
            inputs (Tensor, optional): (B, 3, H, W) images; None for text-only
                batches.
            data_samples (list[UPv2DataSample]): the B samples.

        Returns:
            dict[str, Tensor]: scalar losses, keys without the task prefix.
        """
        raise NotImplementedError

    def predict(self, model: 'UniPerceiverV2', inputs: Optional[Tensor],
                data_samples: SampleList) -> SampleList:
        """Predict on a batch.

        Args:
            model (UniPerceiverV2): the shared encoders and decoder.
            inputs (Tensor, optional): (B, 3, H, W) images; None for text-only
                batches.
            data_samples (list[UPv2DataSample]): the B samples.

        Returns:
            list[UPv2DataSample]: the samples with the task's prediction
            fields set (see the task's docstring).
        """
        raise NotImplementedError


class ClassNamesMixin:
    """Class-name targets shared by classification, detection and instance
    segmentation.

    Each class may have several synonyms: training samples one per class
    per batch (v1's rule), inference uses the first. The names are encoded
    as targets ``[<SPE>; f_text(name)]`` with the ``'text_target'``
    attribute; at inference the embeddings are cached by the model (see
    :class:`~.target_cache.TargetEmbeddingCache`).
    """
    classes: Optional[List[List[str]]] = None

    def set_classes(self, classes: ClassNames) -> None:
        """Replace the class names (open-vocabulary inference, paper
        Appendix C)."""
        self.classes = normalize_class_names(classes)

    @property
    def num_classes(self) -> int:
        """Number of classes C (0 before any are set)."""
        return 0 if self.classes is None else len(self.classes)

    def class_texts(self, sample_synonyms: bool) -> List[str]:
        """One name per class: a random synonym or the first."""
        if self.classes is None:
            raise RuntimeError(
                f'{type(self).__name__} has no class names: give classes=... '
                'in its config or call set_classes()')
        if not sample_synonyms:
            return [names[0] for names in self.classes]
        picks = [
            int(torch.randint(len(names), ())) if len(names) > 1 else 0
            for names in self.classes
        ]
        return [names[i] for names, i in zip(self.classes, picks)]

    def class_embeddings(self, model: 'UniPerceiverV2') -> Tensor:
        """(C, D) the decoder's ``<SPE>`` outputs of the class names; with
        gradient in training, cached at inference."""
        texts = self.class_texts(sample_synonyms=model.training)
        return model.encode_text_targets(texts, 'text_target')
