# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch
from mmdet.models.layers import (
    DeformableDetrTransformerEncoder,
    DinoTransformerDecoder,
)

from mmupv2.models.layers import (
    DeformableDinoDecoder,
    DeformableEncoder,
    MSDeformAttn,
)

SHAPES = torch.tensor([[6, 6], [3, 3]])
LEVEL_START = torch.tensor([0, 36])


def _layer_cfg(dims, decoder=False):
    attn = dict(embed_dims=dims, num_heads=4, num_levels=2, num_points=2,
                dropout=0.0)
    ffn = dict(embed_dims=dims, feedforward_channels=2 * dims, ffn_drop=0.0)
    if decoder:
        return dict(self_attn_cfg=dict(embed_dims=dims, num_heads=4,
                                       dropout=0.0),
                    cross_attn_cfg=attn, ffn_cfg=ffn)
    return dict(self_attn_cfg=attn, ffn_cfg=ffn)


def test_encoder_is_mmdets_with_selecting_attention():
    torch.manual_seed(0)
    ours = DeformableEncoder(num_layers=2, layer_cfg=_layer_cfg(32))
    ref = DeformableDetrTransformerEncoder(
        num_layers=2, layer_cfg=_layer_cfg(32))
    ours.load_state_dict(ref.state_dict())  # same keys and shapes
    assert all(isinstance(layer.self_attn, MSDeformAttn)
               for layer in ours.layers)
    feat, pos = torch.randn(2, 45, 32), torch.randn(2, 45, 32)
    kwargs = dict(query=feat, query_pos=pos, key_padding_mask=None,
                  spatial_shapes=SHAPES, level_start_index=LEVEL_START,
                  valid_ratios=torch.ones(2, 2, 2))
    torch.testing.assert_close(ours(**kwargs), ref(**kwargs))


def test_decoder_is_mmdets_at_256_and_works_at_other_widths():
    torch.manual_seed(0)
    ours = DeformableDinoDecoder(
        num_layers=2, layer_cfg=_layer_cfg(256, decoder=True),
        post_norm_cfg=None)
    ref = DinoTransformerDecoder(
        num_layers=2, layer_cfg=_layer_cfg(256, decoder=True),
        post_norm_cfg=None)
    ours.load_state_dict(ref.state_dict())
    reg = [torch.nn.Linear(256, 4)] * 2
    kwargs = dict(query=torch.randn(1, 5, 256), value=torch.randn(1, 45, 256),
                  key_padding_mask=None, self_attn_mask=None,
                  reference_points=torch.rand(1, 5, 4), spatial_shapes=SHAPES,
                  level_start_index=LEVEL_START,
                  valid_ratios=torch.ones(1, 2, 2), reg_branches=reg)
    for a, b in zip(ours(**kwargs), ref(**kwargs)):
        torch.testing.assert_close(a, b)

    small = DeformableDinoDecoder(
        num_layers=2, layer_cfg=_layer_cfg(32, decoder=True),
        post_norm_cfg=None)
    kwargs.update(query=torch.randn(1, 5, 32), value=torch.randn(1, 45, 32),
                  reg_branches=[torch.nn.Linear(32, 4)] * 2)
    states, references = small(**kwargs)
    assert states.shape == (2, 1, 5, 32)
    assert references.shape == (3, 1, 5, 4)


def test_unsupported_options_are_named():
    with pytest.raises(ValueError, match='num_cp=1'):
        DeformableEncoder(num_layers=2, layer_cfg=_layer_cfg(32), num_cp=1)
    with pytest.raises(ValueError, match='post_norm_cfg'):
        DeformableDinoDecoder(num_layers=1,
                              layer_cfg=_layer_cfg(32, decoder=True))
