# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmdet's Deformable-DETR encoder and DINO decoder on :class:`MSDeformAttn`.

The four classes are mmdet's (same arguments, forward passes and state-dict
keys); only the deformable attention is built from
:class:`~mmupv2.models.layers.MSDeformAttn`, which chooses its kernel
explicitly (mmcv's CUDA kernel, or its PyTorch path on CPU and as a logged
fallback on GPU), and the DINO decoder's query positions are encoded from
the boxes relative to each image, not to the padded batch (see
:class:`DeformableDinoDecoder`).
"""
from typing import Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers import (
    DeformableDetrTransformerDecoderLayer,
    DeformableDetrTransformerEncoder,
    DeformableDetrTransformerEncoderLayer,
    DinoTransformerDecoder,
)
from mmdet.models.layers.transformer.utils import (
    MLP,
    coordinate_to_encoding,
    inverse_sigmoid,
)
from mmengine.model import ModuleList
from torch import Tensor, nn

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

    One change to mmdet's forward: the query positions (``ref_point_head``
    of the sine encoding) are computed from the reference boxes normalised
    to each image, as the boxes themselves are. mmdet (and the original
    DINO) encodes the boxes scaled by the level-0 valid ratio, i.e.
    normalised to the padded batch, so an image's queries changed with
    the size of the largest image in its batch (proposal objectness moved
    by ~1e-2 on the tiny encoder). Both are the same for unpadded images;
    the deformable cross-attention still samples in batch coordinates.
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

    def forward(self, query: Tensor, value: Tensor, key_padding_mask: Tensor,
                self_attn_mask: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor,
                valid_ratios: Tensor, reg_branches: nn.ModuleList,
                **kwargs) -> Tuple[Tensor, Tensor]:
        """mmdet's ``DinoTransformerDecoder.forward`` with image-normalised
        query positions (see the class docstring).

        Args:
            query (Tensor): (B, Q, d).
            value (Tensor): (B, S, d) the encoder's memory.
            key_padding_mask (Tensor, optional): (B, S) bool, True = padding.
            self_attn_mask (Tensor, optional): (Q, Q) bool.
            reference_points (Tensor): (B, Q, 4) boxes (cx, cy, w, h)
                normalised to each image.
            spatial_shapes (Tensor): (num_levels, 2).
            level_start_index (Tensor): (num_levels, ).
            valid_ratios (Tensor): (B, num_levels, 2).
            reg_branches (nn.ModuleList): a box head per layer.

        Returns:
            tuple[Tensor, Tensor]: (L, B, Q, d) normalised states of every
            layer and (L + 1, B, Q, 4) the boxes each layer refined (with
            ``return_intermediate``, as every config sets).
        """
        if not self.return_intermediate:
            raise ValueError('DeformableDinoDecoder needs '
                             'return_intermediate=True')
        if reference_points.shape[-1] != 4:
            raise ValueError('DeformableDinoDecoder refines boxes: '
                             'reference_points must be (B, Q, 4), got '
                             f'{tuple(reference_points.shape)}')
        intermediate = []
        intermediate_reference_points = [reference_points]
        for lid, layer in enumerate(self.layers):
            reference_points_input = reference_points[:, :, None] * torch.cat(
                [valid_ratios, valid_ratios], -1)[:, None]
            query_pos = self.ref_point_head(
                coordinate_to_encoding(reference_points))
            query = layer(
                query,
                query_pos=query_pos,
                value=value,
                key_padding_mask=key_padding_mask,
                self_attn_mask=self_attn_mask,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
                valid_ratios=valid_ratios,
                reference_points=reference_points_input,
                **kwargs)
            new_reference_points = (reg_branches[lid](query) + inverse_sigmoid(
                reference_points, eps=1e-3)).sigmoid()
            reference_points = new_reference_points.detach()
            intermediate.append(self.norm(query))
            intermediate_reference_points.append(new_reference_points)
        return torch.stack(intermediate), torch.stack(
            intermediate_reference_points)
