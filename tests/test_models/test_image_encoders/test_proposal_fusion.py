# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import math

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


def _sine_encoding(box, num_feats, temperature=10000):
    """DINO's sine encoding of one (cx, cy, w, h) box, element by element:
    the features of cy, cx, w, h in that order, each ``[sin(c / T^(0/F)),
    cos(c / T^(0/F)), sin(c / T^(2/F)), cos(c / T^(2/F)), ...]`` of
    ``c = 2 pi * coordinate``."""
    cx, cy, w, h = box
    feats = []
    for coord in (cy, cx, w, h):
        for i in range(num_feats):
            angle = 2 * math.pi * coord / temperature**(2 * (i // 2) /
                                                       num_feats)
            feats.append(math.sin(angle) if i % 2 == 0 else math.cos(angle))
    return torch.tensor(feats)


def test_fused_token_is_eq2_computed_by_hand():
    """q_proposal = q_sem + B(box) + M(mask) on a tiny example, with the
    box encoded and the mask turned into probabilities, cropped and
    average-pooled by hand (a 4x4 region of a 4x6 padded map, 2x2 blocks;
    probabilities are pooled, not logits)."""
    torch.manual_seed(0)
    fusion = ProposalFusion(embed_dims=8, num_proposals=2,
                            mask_pool_size=2, box_feats=4)
    query = torch.randn(1, 2, 8)
    masks = torch.randn(1, 2, 4, 6) * 3
    masks[..., 4:] = 50.0  # the padding: must not count
    proposals = ProposalPredictions(
        objectness=torch.zeros(1, 2),
        boxes=torch.tensor([[[0.3, 0.6, 0.2, 0.4], [0.7, 0.2, 0.5, 0.1]]]),
        masks=masks)
    tokens, _, keep = fusion(query, proposals, [(4, 4)])

    for slot, n in enumerate(keep[0].tolist()):
        box = _sine_encoding(proposals.boxes[0, n].tolist(), 4)
        prob = [[1 / (1 + math.exp(-float(masks[0, n, y, x])))
                 for x in range(4)] for y in range(4)]
        pooled = torch.tensor([
            sum(prob[y][x] for y in (2 * by, 2 * by + 1)
                for x in (2 * bx, 2 * bx + 1)) / 4
            for by in range(2) for bx in range(2)
        ])
        expected = (query[0, n]
                    + fusion.box_proj.weight @ box + fusion.box_proj.bias
                    + fusion.mask_proj.weight @ pooled
                    + fusion.mask_proj.bias)
        torch.testing.assert_close(tokens[0, slot], expected)
