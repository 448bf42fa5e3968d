# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Contrastive denoising queries with binary (object / noise) labels."""
import torch
from mmdet.models.layers import CdnQueryGenerator
from mmdet.utils import OptConfigType
from torch import Tensor

from mmupv2.registry import MODELS

#: Index of the label embedding of a ground-truth object.
OBJECT_LABEL = 0
#: Index of the label embedding of a query whose label was noised.
NOISED_LABEL = 1


@MODELS.register_module()
class BinaryCdnQueryGenerator(CdnQueryGenerator):
    """mmdet's DINO contrastive denoising (CDN) query generator for a
    proposal network that knows one class: "object".

    Box noise, grouping, collation and the attention mask are mmdet's
    :class:`~mmdet.models.layers.CdnQueryGenerator` unchanged (positive
    queries jittered inside the box by ``box_noise_scale``, negative ones
    between one and two times that). Label noise cannot flip a label to
    another class when there is one class, so, where the paper is silent,
    it flips it to a second embedding, "noised": every ground truth starts
    as :data:`OBJECT_LABEL` (class labels of the data samples are ignored),
    and a fraction ``label_noise_scale * 0.5`` is replaced by
    :data:`NOISED_LABEL` (the ``* 0.5`` is DINO's convention, kept so that
    ``label_noise_scale`` means what it means in DINO configs). The decoder
    must still call a noised positive query an object, which is the
    denoising task.

    Args:
        embed_dims (int): dimension of the generated queries.
        num_matching_queries (int): N, the matching queries after the
            denoising ones (for the attention mask).
        label_noise_scale (float): 0.5 in Uni-Perceiver v2 (Table 7).
        box_noise_scale (float): 1.0 in Uni-Perceiver v2 (Table 7).
        group_cfg (dict, optional): mmdet's grouping; defaults to DINO's
            ``dict(dynamic=True, num_dn_queries=100)``: as many groups as
            fit 100 queries (at least one).
    """

    def __init__(self,
                 embed_dims: int,
                 num_matching_queries: int,
                 label_noise_scale: float = 0.5,
                 box_noise_scale: float = 1.0,
                 group_cfg: OptConfigType = None) -> None:
        if group_cfg is None:
            group_cfg = dict(dynamic=True, num_dn_queries=100)
        super().__init__(
            num_classes=2,
            embed_dims=embed_dims,
            num_matching_queries=num_matching_queries,
            label_noise_scale=label_noise_scale,
            box_noise_scale=box_noise_scale,
            group_cfg=dict(group_cfg))

    def generate_dn_label_query(self, gt_labels: Tensor,
                                num_groups: int) -> Tensor:
        """Embed binary labels, a random fraction of them noised.

        Args:
            gt_labels (Tensor): (T,) labels of the T ground truths of the
                batch; only their number is used.
            num_groups (int): denoising groups.

        Returns:
            Tensor: (T * 2 * num_groups, embed_dims) label queries.
        """
        num_queries = gt_labels.numel() * 2 * num_groups
        labels = torch.full((num_queries, ), OBJECT_LABEL,
                            dtype=torch.long, device=gt_labels.device)
        noised = torch.rand(num_queries, device=gt_labels.device) < (
            self.label_noise_scale * 0.5)
        labels[noised] = NOISED_LABEL
        return self.label_embedding(labels)
