# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What every task of the unified formulation shares (paper Sec. 4.3)."""
import inspect
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmupv2.models.decoders import TokenSegment
from mmupv2.models.image_encoders import ImageEncoderOutput

# re-exported: their home before (mmupv2.apis imports ClassNames from here)
from .class_names import ClassNames, normalize_class_names  # noqa: F401
from .interface import SampleList, TaskModel
from .similarity import ScaledCosineSimilarity

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


class BaseTask(BaseModule):
    """A task of the unified formulation: inputs and targets go through the
    shared encoders and decoder (owned by
    :class:`~mmupv2.models.UniPerceiverV2`, passed in as ``model`` and used
    only through :class:`~.interface.TaskModel`) and are compared by Eq. 6
    with this task's own temperature; the loss is Eq. 7.

    Each subclass implements ``forward(model, inputs, data_samples)`` (raw
    outputs), ``loss(model, inputs, data_samples)`` (a dict
    of losses, keys without the task prefix; the model adds it) and
    ``predict(model, inputs, data_samples, **options)`` (the samples with
    predictions). The per-call prediction options are ``predict``'s
    keyword-only arguments (:meth:`predict_options`), e.g. ``classes=``;
    they never change the head. The only parameter a task owns is its
    ``logit_scale`` (v1 keeps one per task type), so a batch of one task
    leaves the other tasks' untouched.

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

    def forward(self, model: TaskModel, inputs: Optional[Tensor],
                data_samples: SampleList):
        """The task's raw outputs (``mode='tensor'``)."""
        raise NotImplementedError

    def loss(self, model: TaskModel, inputs: Optional[Tensor],
             data_samples: SampleList) -> Dict[str, Tensor]:
        """The task's losses on a batch.

        Args:
            model (TaskModel): the shared encoders and decoder.
            inputs (Tensor, optional): (B, 3, H, W) images; None for text-only
                batches.
            data_samples (list[UPv2DataSample]): the B samples.

        Returns:
            dict[str, Tensor]: scalar losses, keys without the task prefix.
        """
        raise NotImplementedError

    def predict(self, model: TaskModel, inputs: Optional[Tensor],
                data_samples: SampleList) -> SampleList:
        """Predict on a batch.

        Args:
            model (TaskModel): the shared encoders and decoder.
            inputs (Tensor, optional): (B, 3, H, W) images; None for text-only
                batches.
            data_samples (list[UPv2DataSample]): the B samples.
            **options: a subclass's keyword-only options for this call
                (:meth:`predict_options`).

        Returns:
            list[UPv2DataSample]: the samples with the task's prediction
            fields set (see the task's docstring).
        """
        raise NotImplementedError

    @classmethod
    def predict_options(cls) -> Tuple[str, ...]:
        """The names of the per-call options of :meth:`predict` (its
        keyword-only arguments), e.g. ``('classes', )``."""
        params = inspect.signature(cls.predict).parameters.values()
        return tuple(p.name for p in params
                     if p.kind is inspect.Parameter.KEYWORD_ONLY)
