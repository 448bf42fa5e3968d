# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The per-pixel embedding of the mask branch (paper Eq. 8)."""
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmupv2.models.layers import replicate_padding
from mmupv2.registry import MODELS


@MODELS.register_module()
class MaskFeatureBranch(BaseModule):
    """Per-pixel mask embedding ``R(G(F_0) + H(F_1^enc))`` of Eq. 8.

    A query's mask is the dot product of ``MLP(q)`` with this map (done by
    the proposal network), as in Mask2Former and Mask DINO::

        pixel_feat  (B, d, H/4, W/4) = G(F_0): the neck's 1x1 conv + GN of
                                       the stride-4 backbone map
        enc_feat    (B, d, H/8, W/8) = F_1^enc: the encoder's stride-8 output
          H: 1x1 conv + GN, bilinear upsampling to H/4 x W/4
          sum, then R: 3x3 conv + GN + ReLU, 1x1 conv
        mask_feat   (B, mask_dims, H/4, W/4)

    ``G`` is not repeated here: the neck (mmdet's ``ChannelMapper``) already
    maps every backbone scale by a 1x1 conv + GN, which is what Eq. 8 asks
    of ``G``.

    Args:
        embed_dims (int): d, channels of both inputs.
        mask_dims (int, optional): channels of the output; defaults to d
            (Mask DINO's ``MASK_DIM`` equals its hidden dim).
        num_groups (int): GroupNorm groups (32 as everywhere in Mask DINO).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 mask_dims: Optional[int] = None,
                 num_groups: int = 32,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_groups != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_groups ({num_groups}) for GroupNorm')
        norm_cfg = dict(type='GN', num_groups=num_groups)
        self.lateral = ConvModule(
            embed_dims, embed_dims, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.output = nn.Sequential(
            ConvModule(
                embed_dims, embed_dims, 3, padding=1, norm_cfg=norm_cfg,
                act_cfg=dict(type='ReLU')),
            nn.Conv2d(embed_dims, mask_dims or embed_dims, 1))

    def forward(self,
                pixel_feat: Tensor,
                enc_feat: Tensor,
                enc_valid_sizes: Optional[Sequence[Tuple[int, int]]] = None
                ) -> Tensor:
        """Fuse the stride-4 and stride-8 maps.

        Args:
            pixel_feat (Tensor): (B, d, H/4, W/4), ``G(F_0)``.
            enc_feat (Tensor): (B, d, H/8, W/8), the encoder's stride-8 map.
            enc_valid_sizes (Sequence[tuple[int, int]], optional): each
                image's rows and columns of ``enc_feat``; the padding is
                filled with the image's border before the upsampling, so
                an image's mask embedding does not depend on its batch.

        Returns:
            Tensor: (B, mask_dims, H/4, W/4) per-pixel mask embedding.
        """
        lateral = self.lateral(enc_feat)
        if enc_valid_sizes is not None:
            lateral = replicate_padding(lateral, enc_valid_sizes)
        lateral = F.interpolate(
            lateral,
            size=pixel_feat.shape[-2:],
            mode='bilinear',
            align_corners=False)
        return self.output(pixel_feat + lateral)
