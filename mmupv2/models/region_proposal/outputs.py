# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What the binary Mask-DINO proposal network returns."""
from dataclasses import dataclass
from typing import Dict, List, Optional

from torch import Tensor


@dataclass
class ProposalPredictions:
    """Objectness, box and mask of a set of K proposals.

    Attributes:
        objectness (Tensor): (B, K) logits; sigmoid is the probability of
            being an object.
        boxes (Tensor): (B, K, 4) normalised (cx, cy, w, h) in [0, 1],
            relative to the unpadded image (``img_shape``).
        masks (Tensor): (B, K, H/4, W/4) logits on the padded batch's
            stride-4 grid.
    """
    objectness: Tensor
    boxes: Tensor
    masks: Tensor

    def __getitem__(self, index) -> 'ProposalPredictions':
        """Select proposals along K (``preds[:, :n]`` style indices)."""
        return ProposalPredictions(self.objectness[index], self.boxes[index],
                                   self.masks[index])


@dataclass
class ProposalNetworkOutput:
    """The proposal network's output for a batch of B images.

    N is ``num_queries`` (the matching queries), D the number of contrastive
    denoising queries of the batch (training only), d the hidden dimension.

    Attributes:
        query (Tensor): (B, N, d) the last decoder layer's normalised hidden
            states of the matching queries (``q_sem`` of the paper).
        decoder (list[ProposalPredictions]): predictions of the N matching
            queries after each decoder layer (K = N), the last one first-class
            output. Without auxiliary outputs (inference) it holds the last
            layer only.
        encoder (ProposalPredictions, optional): predictions of the N
            encoder tokens that seeded the decoder (query selection); with
            auxiliary outputs only.
        denoising (list[ProposalPredictions], optional): predictions of the D
            denoising queries after each decoder layer (K = D); in training
            with denoising only.
        dn_meta (dict, optional): ``num_denoising_queries`` (D) and
            ``num_denoising_groups``, from mmdet's ``CdnQueryGenerator``.
    """
    query: Tensor
    decoder: List[ProposalPredictions]
    encoder: Optional[ProposalPredictions] = None
    denoising: Optional[List[ProposalPredictions]] = None
    dn_meta: Optional[Dict[str, int]] = None

    @property
    def final(self) -> ProposalPredictions:
        """The last decoder layer's predictions, (B, N, ...)."""
        return self.decoder[-1]
