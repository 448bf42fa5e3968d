# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import torch

from mmupv2.models.image_encoders import GlobalTokens


def test_layout_and_padding_invariance():
    """An image's pooled tokens do not depend on the batch padding."""
    torch.manual_seed(0)
    tokens = GlobalTokens(embed_dims=16, num_pools=3, num_heads=4).eval()
    feat = torch.randn(1, 16, 2, 3)
    alone, alone_mask = tokens(feat)
    assert alone.shape == (1, 3 + 6, 16)
    assert not alone_mask.any()

    padded = torch.randn(1, 16, 4, 5) * 50  # garbage in the padding
    padded[..., :2, :3] = feat
    padding = torch.ones(1, 4, 5, dtype=torch.bool)
    padding[:, :2, :3] = False
    out, mask = tokens(padded, padding)
    assert out.shape == (1, 3 + 20, 16)
    torch.testing.assert_close(out[:, :3], alone[:, :3])
    assert not mask[:, :3].any()
    assert torch.equal(mask[:, 3:], padding.flatten(1))
    torch.testing.assert_close(out[:, 3:], padded.flatten(2).transpose(1, 2))


def test_pools_are_independent():
    tokens = GlobalTokens(embed_dims=16, num_pools=2, num_heads=4)
    assert tokens.pools[0].attn.in_proj_weight is not \
        tokens.pools[1].attn.in_proj_weight
    out, _ = tokens(torch.randn(1, 16, 2, 2))
    assert not torch.allclose(out[:, 0], out[:, 1])
