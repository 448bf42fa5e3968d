# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Object detection: each region proposal's decoder output vs class names."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmupv2.models.image_encoders import ImageEncoderOutput
from mmupv2.registry import MODELS

from .base import BaseTask, image_segment
from .class_names import ClassNames, ClassNamesMixin
from .interface import SampleList, TaskModel
from .proposal_postprocess import proposal_boxes, proposal_masks


@MODELS.register_module()
class DetectionTask(ClassNamesMixin, BaseTask):
    """Object detection (paper Sec. 4.3, "tasks with localization").

    ::

        image -> f_image -> [<SPE>; global (B, G); regional (B, O)] -> g
              -> the O regional outputs  r (B, O, D)
        class names -> f_text -> [<SPE>; text] -> g -> <SPE>  t (C, D)
        logits = cos(r, t) / tau                               (B, O, C)

    Training: the head asks the image encoder for the proposal losses
    (``encode_image(..., with_proposal_loss=True)``); the proposal
    network's Hungarian matching
    (``ImageEncoderOutput.matched_indices``) says which regional token
    stands for which ground-truth object; the matched tokens get a softmax
    cross-entropy over the class names (Eq. 7, ``loss_cls``, averaged over
    the matched tokens of the batch). Unmatched tokens get no class loss:
    foreground vs background is the proposal network's binary objectness,
    trained by its own losses, which are returned alongside with the
    prefix ``proposal.`` (``'proposal.loss_bbox'`` ...; the model then adds
    the task: ``'detection.proposal.loss_bbox'``).

    Inference: a proposal's score for class c is
    ``sigmoid(objectness) * softmax_c(logits)``, i.e. P(foreground) *
    P(class | foreground). (A square root of it, which some report, is a
    monotone map and gives the same ranking, hence the same AP.) The
    ``num_results`` best (proposal, class) pairs of an image are kept, as
    mmdet's DINO head does; their boxes (and masks) are the proposals'.

    Predictions (``pred_instances``, as mmdet): ``bboxes`` (N, 4) xyxy in
    original-image pixels (``rescale=True``, by ``scale_factor``),
    ``scores`` (N,), ``labels`` (N,), and for instance segmentation
    ``masks``: a list of N COCO RLE dicts (``size`` [H, W], ``counts``
    bytes) of the original size, as mmdet's ``CocoMetric`` takes them
    (``pycocotools.mask.decode`` or :func:`~.mask_paste.decode_rle_masks`
    give the (N, H, W) bool array). RLE, not a dense tensor: N full-size
    masks of a large photo do not fit in memory (100 x 4000 x 4000).
    Boxes and masks go to pixels by :mod:`~.proposal_postprocess`, the
    post-processing that the class-agnostic proposer shares. Per-call
    option: ``predict(..., classes=[...])`` detects these names instead of
    the head's, for that call only.

    Args:
        classes: class names; an entry may be a list of synonyms.
        image_tokens: ``'all'`` (the paper's default: the decoder sees the
            global and the regional tokens) or ``'regional'`` (the regional
            tokens only, Table 2's "Regional" row). ``'global'`` is refused:
            detection classifies the regional outputs.
        num_results: detections kept per image (100).
        mask_threshold: mask probability threshold (instance segmentation).
        rescale: boxes/masks in the original image's pixels.
        **kwargs: see :class:`~.base.BaseTask`.
    """
    task = 'detection'
    with_mask = False

    def __init__(self,
                 *,
                 classes: Optional[ClassNames] = None,
                 image_tokens: str = 'all',
                 num_results: int = 100,
                 mask_threshold: float = 0.5,
                 rescale: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if image_tokens not in ('all', 'regional'):
            raise ValueError(
                f'{type(self).__name__}: image_tokens must be \'all\' or '
                f'\'regional\' (it classifies the regional tokens), got '
                f'{image_tokens!r}')
        if classes is not None:
            self.set_classes(classes)
        self.image_tokens = image_tokens
        self.num_results = num_results
        self.mask_threshold = mask_threshold
        self.rescale = rescale

    def forward(self,
                model: TaskModel,
                inputs: Tensor,
                data_samples: SampleList,
                classes: Optional[ClassNames] = None,
                with_proposal_loss: bool = False
                ) -> Tuple[Tensor, ImageEncoderOutput]:
        """The (B, O, C) class logits of the O regional tokens (Eq. 6, over
        ``classes`` if given, else the head's), and the image encoder's
        output (with the proposal losses if asked for)."""
        enc = model.encode_image(  # f_image(x): O regional tokens
            inputs, data_samples, with_proposal_loss=with_proposal_loss)
        seg = image_segment(enc, 'localization_image_input',
                            self.image_tokens)
        num_regions = enc.regional_tokens.shape[1]
        regions = model.decode([seg]).segment(0)[:, -num_regions:]  # g
        targets = self.class_embeddings(model, classes)  # (C, D)
        return self.similarity(regions, targets), enc

    def loss(self, model: TaskModel, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_cls`` on the matched tokens and ``proposal.*``."""
        logits, enc = self.forward(
            model, inputs, data_samples, with_proposal_loss=True)
        if enc.matched_indices is None:
            raise RuntimeError(
                f'{self.task}: the image encoder returned no matched_indices '
                'although asked for the proposal losses; it must match its '
                'proposals to the ground truth (gt_instances)')
        rows, labels = [], []
        for b, (token_idx, gt_idx) in enumerate(enc.matched_indices):
            gt_labels = data_samples[b].gt_instances.labels.to(logits.device)
            rows.append(logits[b, token_idx.to(logits.device)])
            labels.append(gt_labels[gt_idx.to(logits.device)])
        rows, labels = torch.cat(rows), torch.cat(labels).long()
        if labels.numel():
            loss_cls = F.cross_entropy(rows, labels)
        else:  # no object in the batch: keep the graph, no signal
            loss_cls = logits.sum() * 0
        losses = dict(loss_cls=loss_cls * self.loss_weight)
        losses.update({f'proposal.{k}': v for k, v in enc.losses.items()})
        return losses

    def predict(self,
                model: TaskModel,
                inputs: Tensor,
                data_samples: SampleList,
                *,
                classes: Optional[ClassNames] = None) -> SampleList:
        """Set ``pred_instances`` (see the class docstring); ``classes``:
        the label space of this call (default: the head's)."""
        logits, enc = self.forward(model, inputs, data_samples, classes)
        return self.predict_by_feat(logits, enc, data_samples)

    def predict_by_feat(self, logits: Tensor, enc: ImageEncoderOutput,
                        data_samples: SampleList) -> SampleList:
        """Turn region logits (B, O, C) and proposals into
        ``pred_instances`` (see the class docstring)."""
        num_classes = logits.shape[-1]
        probs = logits.softmax(-1) * enc.regional_objectness.sigmoid()[
            ..., None]  # (B, O, C)
        for b, sample in enumerate(data_samples):
            k = min(self.num_results, probs[b].numel())
            scores, idx = probs[b].flatten().topk(k)
            proposal = torch.div(idx, num_classes, rounding_mode='floor')
            results = InstanceData()
            results.scores = scores
            results.labels = idx % num_classes
            results.bboxes = proposal_boxes(enc.regional_boxes[b, proposal],
                                            sample.metainfo, self.rescale)
            if self.with_mask:
                results.masks = proposal_masks(
                    enc.regional_masks[b], proposal, sample.metainfo,
                    self.mask_threshold, self.rescale)
            sample.pred_instances = results
        return data_samples
