# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image-text retrieval: contrastive image and text ``<SPE>`` features."""
from typing import TYPE_CHECKING, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmupv2.models.decoders import TokenSegment
from mmupv2.registry import MODELS

from .base import BaseTask, SampleList, image_segment
from .gather import gather_with_grad

if TYPE_CHECKING:
    from mmupv2.models.uniperceiver_v2 import UniPerceiverV2


def _sample_texts(sample) -> List[str]:
    """The texts of a sample: ``text`` (a pair's caption, a text query) or
    else ``gt_caption`` (all captions of a test image)."""
    if isinstance(sample.get('text'), str):
        return [sample.text]
    return list(sample.get('gt_caption') or [])


@MODELS.register_module()
class RetrievalTask(BaseTask):
    """Image-text retrieval (paper Sec. 4.3; Table 4 "feature gather").

    ::

        image -> f_image -> [<SPE>; image tokens] -> g -> <SPE>  v (B, D)
        text  -> f_text  -> [<SPE>; text tokens]  -> g -> <SPE>  t (B, D)
        i2t = cos(v, t_all) / tau (B, W*B);  t2i = cos(t, v_all) / tau
        loss_i2t, loss_t2i = cross-entropy with the paired item  (InfoNCE)

    ``v_all`` / ``t_all`` are the features of every rank (negatives from
    the global batch) gathered *with* gradient
    (:func:`~.gather.gather_with_grad`), so after DDP's gradient averaging
    the update equals single-process training on the global batch (tested
    with 2 gloo processes). ``gather=False`` uses only the local batch (the
    ablation of Table 4). The text side uses the ``'text_target'``
    attribute, the image side ``'image_input'`` (v1's routes for
    retrieval).

    Predictions (per sample): ``image_feat`` (D,) for a sample with an
    image, ``text_feat`` (n, D) for its texts (``text`` or ``gt_caption``);
    both L2-normalised, for a gallery-level evaluation loop. For image
    samples, ``pred_score`` holds the scaled similarities to all texts of
    the batch in order (an in-batch gallery).

    Args:
        gather: gather negatives from all ranks.
        image_tokens: ``'all'`` / ``'global'`` / ``'regional'``.
        **kwargs: see :class:`~.base.BaseTask`.
    """
    task = 'retrieval'

    def __init__(self,
                 *,
                 gather: bool = True,
                 image_tokens: str = 'all',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.gather = gather
        self.image_tokens = image_tokens

    def forward(self, model: 'UniPerceiverV2', inputs: Optional[Tensor],
                data_samples: SampleList) -> Tensor:
        """(B, D) normalised image features, or text features (of each
        sample's first text) for a text-only batch (``mode='tensor'``)."""
        if inputs is not None:
            return F.normalize(
                self.image_features(model, inputs, data_samples), dim=-1)
        texts = [_sample_texts(s)[0] for s in data_samples]
        return F.normalize(self.text_features(model, texts), dim=-1)

    def image_features(self, model: 'UniPerceiverV2', inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        """(B, D) ``<SPE>`` outputs of the images (not normalised)."""
        enc = model.encode_image(inputs, data_samples)
        seg = image_segment(enc, 'image_input', self.image_tokens)
        return model.decoder([seg]).spe

    def text_features(self, model: 'UniPerceiverV2',
                      texts: List[str]) -> Tensor:
        """(N, D) ``<SPE>`` outputs of the texts (not normalised)."""
        ids, mask = model.text_encoder.tokenize(texts)
        feats = model.text_encoder(ids, mask)
        seg = TokenSegment(
            feats, 'text', 'text_target', padding_mask=mask == 0)
        return model.decoder([seg]).spe

    def loss(self, model: 'UniPerceiverV2', inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_i2t`` and ``loss_t2i`` on one text per image."""
        texts = []
        for sample in data_samples:
            sample_texts = _sample_texts(sample)
            if not sample_texts:
                raise KeyError('a retrieval training sample needs text or '
                               f'gt_caption, got {sorted(sample.keys())}')
            texts.append(sample_texts[
                int(torch.randint(len(sample_texts), ()))])
        image = F.normalize(self.image_features(model, inputs, data_samples),
                            dim=-1)
        text = F.normalize(self.text_features(model, texts), dim=-1)
        return self.contrastive_loss(image, text)

    def contrastive_loss(self, image: Tensor,
                         text: Tensor) -> Dict[str, Tensor]:
        """Symmetric InfoNCE of paired, normalised features.

        Args:
            image (Tensor): (B, D) this rank's image features.
            text (Tensor): (B, D) the paired text features.

        Returns:
            dict: ``loss_i2t`` and ``loss_t2i``.
        """
        if self.gather:
            all_image, offset = gather_with_grad(image)
            all_text, _ = gather_with_grad(text)
        else:
            all_image, all_text, offset = image, text, 0
        labels = torch.arange(image.shape[0], device=image.device) + offset
        i2t = self.similarity(image, all_text)
        t2i = self.similarity(text, all_image)
        weight = self.loss_weight / 2
        return dict(
            loss_i2t=F.cross_entropy(i2t, labels) * weight,
            loss_t2i=F.cross_entropy(t2i, labels) * weight)

    def predict(self, model: 'UniPerceiverV2', inputs: Optional[Tensor],
                data_samples: SampleList) -> SampleList:
        """Set ``text_feat``, ``image_feat`` and ``pred_score``."""
        texts_per_sample = [_sample_texts(s) for s in data_samples]
        all_texts = [t for texts in texts_per_sample for t in texts]
        text_feats = F.normalize(
            self.text_features(model, all_texts), dim=-1) if all_texts else (
                None)
        start = 0
        for sample, texts in zip(data_samples, texts_per_sample):
            if texts:
                sample.text_feat = text_feats[start:start + len(texts)]
                start += len(texts)
        if inputs is None:
            return data_samples
        image_feats = F.normalize(
            self.image_features(model, inputs, data_samples), dim=-1)
        for sample, feat in zip(data_samples, image_feats):
            sample.image_feat = feat
            if text_feats is not None:
                sample.set_pred_score(feat @ text_feats.t() *
                                      self.similarity.scale)
        return data_samples
