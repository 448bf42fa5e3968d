# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import torch
from mmengine.structures import InstanceData

from mmupv2.models.region_proposal import (
    NOISED_LABEL,
    OBJECT_LABEL,
    BinaryCdnQueryGenerator,
)
from mmupv2.structures import UPv2DataSample


def _sample(num_gts):
    sample = UPv2DataSample(metainfo=dict(img_shape=(50, 40)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[4., 5., 20., 25.]]).repeat(num_gts, 1),
        labels=torch.arange(num_gts) + 3)
    return sample


def test_labels_are_object_or_noised():
    torch.manual_seed(0)
    gen = BinaryCdnQueryGenerator(
        embed_dims=8, num_matching_queries=5,
        group_cfg=dict(dynamic=True, num_dn_queries=400))
    emb = gen.label_embedding.weight
    labels = torch.arange(2) + 40  # class indices are ignored
    queries = gen.generate_dn_label_query(labels, num_groups=200)
    assert queries.shape == (800, 8)
    is_object = (queries == emb[OBJECT_LABEL]).all(-1)
    is_noised = (queries == emb[NOISED_LABEL]).all(-1)
    assert bool((is_object | is_noised).all())
    # label_noise_scale 0.5 -> a quarter noised (DINO's * 0.5)
    assert 0.18 < is_noised.float().mean() < 0.32


def test_batch_queries_and_attention_mask():
    gen = BinaryCdnQueryGenerator(
        embed_dims=8, num_matching_queries=5,
        group_cfg=dict(dynamic=True, num_dn_queries=8))
    label_q, box_q, attn_mask, meta = gen([_sample(2), _sample(1)])
    # 8 // 2 = 4 groups of 2 * 2 queries
    assert meta == dict(num_denoising_queries=16, num_denoising_groups=4)
    assert label_q.shape == (2, 16, 8) and box_q.shape == (2, 16, 4)
    assert attn_mask.shape == (21, 21)
    assert bool(attn_mask[16:, :16].all())  # matching cannot see denoising


def test_batch_without_ground_truth():
    gen = BinaryCdnQueryGenerator(embed_dims=8, num_matching_queries=5)
    label_q, box_q, attn_mask, meta = gen([_sample(0)])
    assert label_q.shape == (1, 0, 8) and box_q.shape == (1, 0, 4)
    assert attn_mask.shape == (5, 5) and meta['num_denoising_queries'] == 0
