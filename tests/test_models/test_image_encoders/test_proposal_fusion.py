# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.image_encoders import ProposalFusion
from mmupv2.models.region_proposal import ProposalPredictions


def _proposals(bs=2, n=6, h=8, w=10):
    torch.manual_seed(0)
    return (torch.randn(bs, n, 16, requires_grad=True),
            ProposalPredictions(
                objectness=torch.randn(bs, n),
                boxes=torch.rand(bs, n, 4, requires_grad=True),
                masks=torch.randn(bs, n, h, w, requires_grad=True)))


def test_selects_top_o_with_their_box_and_mask():
    fusion = ProposalFusion(embed_dims=16, num_proposals=4,
                            mask_pool_size=4, box_feats=8)
    query, proposals = _proposals()
    tokens, selected, keep = fusion(query, proposals, [(8, 10), (8, 10)])
    assert tokens.shape == (2, 4, 16) and keep.shape == (2, 4)
    assert bool((selected.objectness.diff(dim=1) <= 0).all())
    for b in range(2):
        torch.testing.assert_close(selected.boxes[b], proposals.boxes[b,
                                                                      keep[b]])
        torch.testing.assert_close(selected.masks[b], proposals.masks[b,
                                                                      keep[b]])


def test_box_and_mask_are_detached():
    fusion = ProposalFusion(embed_dims=16, num_proposals=4,
                            mask_pool_size=4, box_feats=8)
    query, proposals = _proposals()
    tokens, selected, _ = fusion(query, proposals, [(8, 10), (8, 10)])
    (tokens.sum() + selected.objectness.sum()).backward()
    assert query.grad is not None
    assert proposals.boxes.grad is None and proposals.masks.grad is None


def test_mask_pooling_ignores_padding():
    fusion = ProposalFusion(embed_dims=16, num_proposals=2, mask_pool_size=2)
    masks = torch.randn(1, 3, 4, 6)
    padded = torch.randn(1, 3, 8, 8) * 100
    padded[..., :4, :6] = masks
    torch.testing.assert_close(
        fusion.pool_masks(padded, [(4, 6)]),
        fusion.pool_masks(masks, [(4, 6)]))


def test_too_many_proposals_is_named():
    fusion = ProposalFusion(embed_dims=16, num_proposals=7)
    query, proposals = _proposals()
    with pytest.raises(ValueError, match='num_proposals=7'):
        fusion(query, proposals, [(8, 10), (8, 10)])
