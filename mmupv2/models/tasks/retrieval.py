# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image-text retrieval: contrastive image and text ``<SPE>`` features."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather, get_world_size
from torch import Tensor

from mmupv2.registry import MODELS

from .base import BaseTask, image_segment
from .feature_queue import FeatureQueue
from .gather import gather_with_grad
from .interface import SampleList, TaskModel


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
        loss_i2t, loss_t2i = cross-entropy with the paired item(s) (InfoNCE)

    ``v_all`` / ``t_all`` are the features of every rank (negatives from
    the global batch) gathered *with* gradient
    (:func:`~.gather.gather_with_grad`), so after DDP's gradient averaging
    the update equals single-process training on the global batch (tested
    with 2 gloo processes). ``gather=False`` uses only the local batch (the
    ablation of Table 4). The texts are targets of the image: they take the
    model's target path (:meth:`TaskModel.encode_targets`, the
    ``'text_target'`` attribute) as texts of the batch (``per_batch``:
    neither cached nor gradient-checkpointed, since every batch brings B
    new texts); the image side uses ``'image_input'`` (v1's routes for
    retrieval).

    Pairs of the same image (samples' ``image_id``, as mmpretrain's BLIP
    ``ITCHead``) are all positives of each other: a batch that holds two
    captions of one image does not push them apart. ``queue_size > 0``
    adds the detached features of the last ``queue_size`` training pairs
    (all ranks) as further negatives, a
    :class:`~.feature_queue.FeatureQueue`: the paper gathers its negatives
    from a global batch of thousands (Table 8: 28 pairs on each of many
    GPUs), which a CPU run cannot reach; the queue stands in for the other
    GPUs at no compute (docs/tasks.md, "Retrieval negatives").

    Predictions (per sample): ``image_feat`` (D,) for a sample with an
    image, ``text_feat`` (n, D) for its texts (``text`` or ``gt_caption``);
    both L2-normalised, for a gallery-level evaluation loop. For image
    samples, ``pred_score`` holds the scaled similarities to all texts of
    the batch in order (an in-batch gallery).

    Args:
        gather: gather negatives from all ranks.
        image_tokens: ``'all'`` / ``'global'`` / ``'regional'``.
        queue_size: number of past training pairs kept as extra negatives
            (0, the paper: the batch only).
        **kwargs: see :class:`~.base.BaseTask`.
    """
    task = 'retrieval'

    def __init__(self,
                 *,
                 gather: bool = True,
                 image_tokens: str = 'all',
                 queue_size: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.gather = gather
        self.image_tokens = image_tokens
        if queue_size < 0:
            raise ValueError(
                f'RetrievalTask: queue_size must be >= 0, got {queue_size}')
        self.queue = FeatureQueue(queue_size) if queue_size else None

    def forward(self, model: TaskModel, inputs: Optional[Tensor],
                data_samples: SampleList) -> Tensor:
        """(B, D) normalised image features, or text features (of each
        sample's first text) for a text-only batch (``mode='tensor'``)."""
        if inputs is not None:
            return F.normalize(
                self.image_features(model, inputs, data_samples), dim=-1)
        texts = [_sample_texts(s)[0] for s in data_samples]
        return F.normalize(self.text_features(model, texts), dim=-1)

    def image_features(self, model: TaskModel, inputs: Tensor,
                       data_samples: SampleList) -> Tensor:
        """(B, D) ``<SPE>`` outputs of the images (not normalised)."""
        enc = model.encode_image(inputs, data_samples)
        seg = image_segment(enc, 'image_input', self.image_tokens)
        return model.decode([seg]).spe

    def text_features(self, model: TaskModel,
                      texts: List[str]) -> Tensor:
        """(N, D) ``<SPE>`` outputs of the texts (not normalised): the
        model's target encoding ``g([<SPE>; f_text(text)])``, as texts of
        the batch (``per_batch=True``)."""
        return model.encode_targets(texts, 'text_target', per_batch=True)

    def loss(self, model: TaskModel, inputs: Tensor,
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
        ids = None
        if all('image_id' in s for s in data_samples):
            ids = torch.tensor([int(s.image_id) for s in data_samples],
                               device=image.device)
        return self.contrastive_loss(image, text, ids)

    def contrastive_loss(self,
                         image: Tensor,
                         text: Tensor,
                         ids: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Symmetric InfoNCE of paired, normalised features.

        Args:
            image (Tensor): (B, D) this rank's image features.
            text (Tensor): (B, D) the paired text features.
            ids (Tensor, optional): (B,) image ids of the pairs; pairs with
                equal ids are positives of each other. None: every pair is
                its own image.

        Returns:
            dict: ``loss_i2t`` and ``loss_t2i``.
        """
        if self.gather:
            all_image, offset = gather_with_grad(image)
            all_text, _ = gather_with_grad(text)
        else:
            all_image, all_text, offset = image, text, 0
        if ids is None:
            if self.queue is not None:
                # a past caption of the same image must not be a negative
                raise KeyError(
                    'RetrievalTask(queue_size>0) needs an image_id in every '
                    'training sample (KarpathyRetrievalDataset sets it); set '
                    'queue_size=0 for a data set without image ids')
            # every pair is its own image: its row in the gathered batch
            all_ids = torch.arange(all_image.shape[0], device=image.device)
            ids = all_ids[offset:offset + image.shape[0]]
        elif self.gather and get_world_size() > 1:
            all_ids = torch.cat(all_gather(ids))
        else:
            all_ids = ids
        keys_image, keys_text, key_ids = all_image, all_text, all_ids
        if self.queue is not None:
            # the batch's features replace the oldest after the loss
            queued_image, queued_text, queued_ids = self.queue.filled()
            if queued_ids.numel():
                keys_image = torch.cat([all_image, queued_image.to(image)])
                keys_text = torch.cat([all_text, queued_text.to(text)])
                key_ids = torch.cat([all_ids, queued_ids.to(all_ids)])
        i2t = self.similarity(image, keys_text)
        t2i = self.similarity(text, keys_image)
        positive = (ids[:, None] == key_ids[None, :]).to(i2t.dtype)
        targets = positive / positive.sum(1, keepdim=True)
        if self.queue is not None:
            self.queue.push(all_image, all_text, all_ids)
        weight = self.loss_weight / 2
        return dict(
            loss_i2t=F.cross_entropy(i2t, targets) * weight,
            loss_t2i=F.cross_entropy(t2i, targets) * weight)

    def predict(self, model: TaskModel, inputs: Optional[Tensor],
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
