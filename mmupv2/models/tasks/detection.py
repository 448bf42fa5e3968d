# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Object detection: each region proposal's decoder output vs class names."""
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData
from torch import Tensor

from mmupv2.models.image_encoders import ImageEncoderOutput
from mmupv2.registry import MODELS

from .base import (
    BaseTask,
    ClassNames,
    ClassNamesMixin,
    SampleList,
    image_segment,
)
from .mask_paste import MaskPaster

if TYPE_CHECKING:
    from mmupv2.models.uniperceiver_v2 import UniPerceiverV2


@MODELS.register_module()
class DetectionTask(ClassNamesMixin, BaseTask):
    """Object detection (paper Sec. 4.3, "tasks with localization").

    ::

        image -> f_image -> [<SPE>; global (B, G); regional (B, O)] -> g
              -> the O regional outputs  r (B, O, D)
        class names -> f_text -> [<SPE>; text] -> g -> <SPE>  t (C, D)
        logits = cos(r, t) / tau                               (B, O, C)

    Training: the proposal network's Hungarian matching
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

    Args:
        classes: class names; an entry may be a list of synonyms.
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
                 num_results: int = 100,
                 mask_threshold: float = 0.5,
                 rescale: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if classes is not None:
            self.set_classes(classes)
        self.num_results = num_results
        self.mask_threshold = mask_threshold
        self.rescale = rescale

    def forward(self, model: 'UniPerceiverV2', inputs: Tensor,
                data_samples: SampleList
                ) -> Tuple[Tensor, ImageEncoderOutput]:
        """The (B, O, C) class logits of the O regional tokens, and the
        image encoder's output."""
        enc = model.encode_image(inputs, data_samples)
        seg = image_segment(enc, 'localization_image_input', 'all')
        num_regions = enc.regional_tokens.shape[1]
        regions = model.decoder([seg]).segment(0)[:, -num_regions:]
        return self.similarity(regions, self.class_embeddings(model)), enc

    def loss(self, model: 'UniPerceiverV2', inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_cls`` on the matched tokens and ``proposal.*``."""
        logits, enc = self.forward(model, inputs, data_samples)
        if enc.matched_indices is None:
            raise RuntimeError(
                f'{self.task}: the image encoder returned no matched_indices '
                'in training; it must match its proposals to the ground '
                'truth (gt_instances)')
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

    def predict(self, model: 'UniPerceiverV2', inputs: Tensor,
                data_samples: SampleList) -> SampleList:
        """Set ``pred_instances`` (see the class docstring)."""
        logits, enc = self.forward(model, inputs, data_samples)
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
            results.bboxes = self._boxes(enc.regional_boxes[b, proposal],
                                         sample.metainfo)
            if self.with_mask:
                results.masks = self._masks(enc.regional_masks[b], proposal,
                                            sample.metainfo)
            sample.pred_instances = results
        return data_samples

    def _boxes(self, boxes: Tensor, meta: dict) -> Tensor:
        """(K, 4) normalised cxcywh -> (K, 4) xyxy pixels."""
        h, w = meta['img_shape'][:2]
        boxes = bbox_cxcywh_to_xyxy(boxes) * boxes.new_tensor([w, h, w, h])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        if self.rescale and 'scale_factor' in meta:
            boxes = boxes / boxes.new_tensor(meta['scale_factor']).repeat(2)
        return boxes

    def _masks(self, masks: Tensor, proposal: Tensor,
               meta: dict) -> List[dict]:
        """(O, H/4, W/4) logits on the padded grid and the (K,) kept
        proposals -> K COCO RLE masks of (H, W) at the original size
        (``img_shape`` without ``rescale``).

        The grid is cropped to the cells that cover the image *before* the
        upsampling: upsampling the padded grid (as mmdet's Mask2Former
        post-processing does) blends the image's last pixels with padding
        cells, so a mask would depend on the batch the image came in. Each
        distinct proposal is upsampled once, alone and only in the window
        that can exceed the threshold (:class:`~.mask_paste.MaskPaster`):
        a large image costs one window of memory, not K full-size masks.
        """
        h, w = meta['img_shape'][:2]
        grid_h, grid_w = masks.shape[-2:]
        pad_shape = meta.get('batch_input_shape', (grid_h * 4, grid_w * 4))
        out_shape = meta['ori_shape'][:2] if (
            self.rescale and 'ori_shape' in meta) else (h, w)
        paster = MaskPaster((grid_h, grid_w), pad_shape, (h, w), out_shape,
                            self.mask_threshold, device=masks.device)
        rles: Dict[int, dict] = {}
        for p in proposal.tolist():
            if p not in rles:
                rles[p] = paster.paste(masks[p])
        return [dict(rles[p]) for p in proposal.tolist()]
