# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image classification as target retrieval over class names."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmupv2.registry import MODELS

from .base import BaseTask, image_segment
from .class_names import ClassNames, ClassNamesMixin
from .interface import SampleList, TaskModel


@MODELS.register_module()
class ClassificationTask(ClassNamesMixin, BaseTask):
    """Image classification (paper Sec. 4.3, "tasks without localization").

    ::

        image -> f_image -> [<SPE>; global; regional] -> g -> <SPE>  q (B, D)
        class names -> f_text -> [<SPE>; text] -> g -> <SPE>      t (C, D)
        logits = cos(q, t) / tau                                   (B, C)
        loss = softmax cross-entropy with the ground-truth class  (Eq. 7)

    Args:
        classes: class names; an entry may be a list of synonyms.
        image_tokens: ``'all'`` / ``'global'`` / ``'regional'`` image tokens.
        **kwargs: see :class:`~.base.BaseTask`.

    Predictions (as mmpretrain): ``pred_score`` (C,) softmax probabilities,
    ``pred_label`` (1,) their argmax. Per-call option:
    ``predict(..., classes=[...])`` scores these names instead of the
    head's (open vocabulary), for that call only.
    """
    task = 'classification'

    def __init__(self,
                 *,
                 classes: Optional[ClassNames] = None,
                 image_tokens: str = 'all',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if classes is not None:
            self.set_classes(classes)
        self.image_tokens = image_tokens

    def forward(self,
                model: TaskModel,
                inputs: Tensor,
                data_samples: SampleList,
                classes: Optional[ClassNames] = None) -> Tensor:
        """(B, C) class logits of the images ``inputs`` (B, 3, H, W)
        (Eq. 6), over ``classes`` if given, else the head's."""
        enc = model.encode_image(inputs, data_samples)  # f_image(x)
        seg = image_segment(enc, 'image_input', self.image_tokens)
        queries = model.decode([seg]).spe  # g: (B, D)
        targets = self.class_embeddings(model, classes)  # g(f_text(y)): (C, D)
        return self.similarity(queries, targets)

    def loss(self, model: TaskModel, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_cls``: softmax cross-entropy over the classes (Eq. 7)."""
        logits = self.forward(model, inputs, data_samples)
        if not all('gt_label' in s and s.gt_label.numel()
                   for s in data_samples):
            raise KeyError('every classification sample needs a gt_label')
        labels = torch.cat([s.gt_label[:1] for s in data_samples]).to(
            logits.device)
        return dict(loss_cls=F.cross_entropy(logits, labels) *
                    self.loss_weight)

    def predict(self, model: TaskModel, inputs: Tensor,
                data_samples: SampleList, *,
                classes: Optional[ClassNames] = None) -> SampleList:
        """Set ``pred_score`` (C,) and ``pred_label`` (1,), over
        ``classes`` for this call if given."""
        scores = self.forward(model, inputs, data_samples,
                              classes).softmax(-1)
        for sample, score in zip(data_samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax(
                keepdim=True))
        return data_samples
