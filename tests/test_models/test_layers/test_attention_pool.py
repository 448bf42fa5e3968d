# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.layers import AttentionPool2d


def test_shape_and_padding_invariance():
    """Padding tokens change neither the mean query nor the attention."""
    torch.manual_seed(0)
    pool = AttentionPool2d(16, num_heads=4, out_dims=8).eval()
    tokens, pos = torch.randn(1, 6, 16), torch.randn(1, 6, 16)
    alone = pool(tokens, pos)
    assert alone.shape == (1, 8)
    padded_tokens = torch.cat([tokens, torch.randn(1, 4, 16) * 100], dim=1)
    padded_pos = torch.cat([pos, torch.randn(1, 4, 16)], dim=1)
    mask = torch.tensor([[False] * 6 + [True] * 4])
    torch.testing.assert_close(pool(padded_tokens, padded_pos, mask), alone)


def test_heads_must_divide_dims():
    with pytest.raises(ValueError, match='divisible'):
        AttentionPool2d(10, num_heads=4)


def test_positions_reach_the_keys():
    """Only the positions change: the pooled token changes. Tokens and
    positions permuted together: it does not (attention is a set
    operation, the positions carry the layout); tokens permuted alone,
    their positions kept in place: it does."""
    torch.manual_seed(0)
    pool = AttentionPool2d(16, num_heads=4).eval()
    tokens, pos = torch.randn(1, 6, 16), torch.randn(1, 6, 16)
    out = pool(tokens, pos)
    assert not torch.allclose(pool(tokens, torch.randn(1, 6, 16)), out,
                              atol=1e-4)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(pool(tokens[:, perm], pos[:, perm]), out)
    assert not torch.allclose(pool(tokens[:, perm], pos), out, atol=1e-4)
