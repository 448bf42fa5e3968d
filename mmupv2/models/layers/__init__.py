# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .attention_pool import AttentionPool2d
from .deformable_transformer import (
    DeformableDecoderLayer,
    DeformableDinoDecoder,
    DeformableEncoder,
    DeformableEncoderLayer,
)
from .ms_deform_attn import (
    CUDA_KERNEL,
    PYTORCH_KERNEL,
    MSDeformAttn,
    mmcv_cuda_kernel_compiled,
    multi_scale_deformable_attn,
    select_ms_deform_attn_kernel,
)
from .padding_masker import (
    PaddingMasker,
    masked_group_norm,
    padding_masks,
    replicate_padding,
    valid_sizes,
)

__all__ = [
    'AttentionPool2d', 'CUDA_KERNEL', 'DeformableDecoderLayer',
    'DeformableDinoDecoder', 'DeformableEncoder', 'DeformableEncoderLayer',
    'MSDeformAttn', 'PaddingMasker', 'PYTORCH_KERNEL', 'masked_group_norm',
    'mmcv_cuda_kernel_compiled', 'multi_scale_deformable_attn',
    'padding_masks', 'replicate_padding', 'select_ms_deform_attn_kernel',
    'valid_sizes'
]
