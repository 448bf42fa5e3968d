# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmdet's Deformable-DETR encoder and DINO decoder on :class:`MSDeformAttn`.

The four classes are mmdet's (same arguments, forward passes and state-dict
keys); only the deformable attention is built from
:class:`~mmupv2.models.layers.MSDeformAttn`, which chooses its kernel
explicitly (mmcv's CUDA kernel, or its PyTorch path on CPU and as a logged
fallback on GPU).
"""
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers import (
    DeformableDetrTransformerDecoderLayer,
    DeformableDetrTransformerEncoder,
    DeformableDetrTransformerEncoderLayer,
    DinoTransformerDecoder,
)
from mmdet.models.layers.transformer.utils import MLP
from mmengine.model import ModuleList
from torch import nn

from .ms_deform_attn import MSDeformAttn

#: Sine features per box coordinate in DINO's query positions (the default
#: ``num_feats`` of mmdet's ``coordinate_to_encoding``, which its decoder
#: uses).
REFERENCE_ENCODING_FEATS = 128


class DeformableEncoderLayer(DeformableDetrTransformerEncoderLayer):
    """mmdet's Deformable-DETR encoder layer (deformable self-attention,
    FFN, two post-norms) with :class:`MSDeformAttn`."""

    def _init_layers(self) -> None:
        self.self_attn = MSDeformAttn(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(2)
        ])


class DeformableDecoderLayer(DeformableDetrTransformerDecoderLayer):
    """mmdet's Deformable-DETR decoder layer (self-attention, deformable
    cross-attention, FFN, three post-norms) with :class:`MSDeformAttn`."""

    def _init_layers(self) -> None:
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = MSDeformAttn(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList([
            build_norm_layer(self.norm_cfg, self.embed_dims)[1]
            for _ in range(3)
        ])


class DeformableEncoder(DeformableDetrTransformerEncoder):
    """mmdet's Deformable-DETR encoder made of :class:`DeformableEncoderLayer`.

    Activation checkpointing through fairscale (mmdet's ``num_cp``) is not
    supported: pass ``num_cp=-1`` (the default).
    """

    def _init_layers(self) -> None:
        if self.num_cp > 0:
            raise ValueError(
                f'num_cp={self.num_cp}: fairscale activation checkpointing '
                'is not supported by DeformableEncoder; use num_cp=-1')
        self.layers = ModuleList([
            DeformableEncoderLayer(**self.layer_cfg)
            for _ in range(self.num_layers)
        ])
        self.embed_dims = self.layers[0].embed_dims


class DeformableDinoDecoder(DinoTransformerDecoder):
    """mmdet's DINO decoder (iterative box refinement, query positions from
    the sine encoding of the reference boxes, a final LayerNorm on every
    returned layer) made of :class:`DeformableDecoderLayer`.

    mmdet sizes the input of ``ref_point_head`` as ``2 * embed_dims`` while
    its forward encodes the reference boxes with ``coordinate_to_encoding``'s
    default 128 features per coordinate, i.e. 512: the two agree only for
    ``embed_dims=256``. Here the input is 512 for any ``embed_dims`` (the
    same module as mmdet's at 256), so small test settings work too.
    """

    def _init_layers(self) -> None:
        if self.post_norm_cfg is not None:
            raise ValueError('DeformableDinoDecoder has no post norm; got '
                             f'post_norm_cfg={self.post_norm_cfg}, use None')
        self.layers = ModuleList([
            DeformableDecoderLayer(**self.layer_cfg)
            for _ in range(self.num_layers)
        ])
        self.embed_dims = self.layers[0].embed_dims
        self.ref_point_head = MLP(4 * REFERENCE_ENCODING_FEATS,
                                  self.embed_dims, self.embed_dims, 2)
        self.norm = nn.LayerNorm(self.embed_dims)
