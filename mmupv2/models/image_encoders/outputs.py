# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The contract between the image encoder and the unified decoder / tasks."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from torch import Tensor


@dataclass
class ImageEncoderOutput:
    """What ``f_image`` (paper Sec. 4.1) gives the rest of the model.

    ``f_image(x) = [global tokens ; regional tokens]``; both are kept apart
    here so that tasks can use either (the ablations of Table 2 drop one).

    Attributes:
        regional_tokens (Tensor): (B, O, d) fused proposal features
            ``q_proposal = q_sem + B(box) + M(mask)`` of the top-O proposals
            by objectness (O = 200 in the paper).
        regional_boxes (Tensor): (B, O, 4) their boxes, normalised
            ``(cx, cy, w, h)`` in [0, 1] relative to the *unpadded* image
            size (``img_shape`` of the sample).
        regional_masks (Tensor): (B, O, H/4, W/4) their mask logits on the
            padded batch's stride-4 grid.
        regional_objectness (Tensor): (B, O) their objectness logits
            (sigmoid gives the foreground probability).
        global_tokens (Tensor): (B, M' + h*w, d): the M' attention-pool
            tokens followed by the flattened last feature map F_L.
        global_padding_mask (Tensor): (B, M' + h*w) bool, True where a
            token lies in padding (never for the M' pool tokens).
        losses (dict[str, Tensor]): the proposal network's losses, when the
            caller asked for them (``with_loss=True``: detection and
            instance segmentation in training, Appendix A): binary
            objectness focal, L1, GIoU, mask BCE, dice, for the encoder
            output and every decoder layer; empty otherwise.
        matched_indices (list[tuple[Tensor, Tensor]], optional): with the
            losses, per image ``(token_idx, gt_idx)``: which of the O
            regional tokens the proposal network's Hungarian matching
            assigned to which ground-truth instance (LongTensors of equal
            length). Detection and instance segmentation train their class
            scores on it.
    """
    regional_tokens: Tensor
    regional_boxes: Tensor
    regional_masks: Tensor
    regional_objectness: Tensor
    global_tokens: Tensor
    global_padding_mask: Tensor
    losses: Dict[str, Tensor] = field(default_factory=dict)
    matched_indices: Optional[List[Tuple[Tensor, Tensor]]] = None


def check_loss_targets(data_samples: Optional[Sequence]) -> None:
    """Raise a ``ValueError`` naming the first sample without
    ``gt_instances.bboxes``: an image encoder asked for its proposal losses
    (``with_loss=True``) needs them in every sample. The caller decides
    whether to ask; the encoder never guesses it from the samples."""
    if not data_samples:
        raise ValueError('the proposal losses (with_loss=True) need the '
                         'data samples, with gt_instances')
    for i, sample in enumerate(data_samples):
        if 'gt_instances' not in sample or (
                'bboxes' not in sample.gt_instances):
            raise ValueError(
                f'the proposal losses (with_loss=True) need gt_instances '
                f'with bboxes in every sample; data sample {i} has none '
                f'(task {sample.metainfo.get("task")!r})')
