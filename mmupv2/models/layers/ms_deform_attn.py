# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Multi-scale deformable attention with an explicit choice of kernel.

mmcv's :class:`~mmcv.ops.MultiScaleDeformableAttention` runs its compiled
CUDA kernel whenever the value tensor is on a CUDA device. An mmcv built
without CUDA (``mmcv.ops.get_compiling_cuda_version() == 'not available'``,
e.g. a CPU wheel installed on a GPU machine) then fails inside the kernel.
:class:`MSDeformAttn` chooses the kernel explicitly instead:

=========================  ==========================  ====================
value on                   mmcv compiled with CUDA     kernel
=========================  ==========================  ====================
CPU                        any                         PyTorch path
CUDA                       yes                         mmcv CUDA kernel
CUDA                       no                          PyTorch path, logged
                                                       once (a warning)
=========================  ==========================  ====================

Both kernels are mmcv's own: ``MultiScaleDeformableAttnFunction`` and
``multi_scale_deformable_attn_pytorch``.
"""
import functools
import logging
from typing import Optional

import torch
from mmcv.ops import MultiScaleDeformableAttention, get_compiling_cuda_version
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttnFunction,
    multi_scale_deformable_attn_pytorch,
)
from mmengine.logging import print_log
from torch import Tensor

from mmupv2.registry import MODELS

#: The two implementations :func:`select_ms_deform_attn_kernel` chooses from.
CUDA_KERNEL = 'cuda'
PYTORCH_KERNEL = 'pytorch'

_fallback_logged = False


@functools.cache
def mmcv_cuda_kernel_compiled() -> bool:
    """Whether the installed mmcv ops were compiled with CUDA (cached)."""
    return get_compiling_cuda_version() != 'not available'


def select_ms_deform_attn_kernel(device: torch.device) -> str:
    """Choose the deformable attention kernel for tensors on ``device``.

    Args:
        device (torch.device): device of the value tensor.

    Returns:
        str: :data:`CUDA_KERNEL` (mmcv's compiled kernel) for a CUDA device
        when mmcv was compiled with CUDA; :data:`PYTORCH_KERNEL` otherwise.
        Falling back on a CUDA device logs a warning, once per process.
    """
    global _fallback_logged
    if device.type != 'cuda':
        return PYTORCH_KERNEL
    if mmcv_cuda_kernel_compiled():
        return CUDA_KERNEL
    if not _fallback_logged:
        print_log(
            'mmcv was compiled without CUDA (get_compiling_cuda_version() '
            "is 'not available'): multi-scale deformable attention on "
            f'{device} uses the PyTorch path '
            '(multi_scale_deformable_attn_pytorch), which is slower and '
            'uses more memory.',
            logger='current',
            level=logging.WARNING)
        _fallback_logged = True
    return PYTORCH_KERNEL


def multi_scale_deformable_attn(value: Tensor,
                                spatial_shapes: Tensor,
                                level_start_index: Tensor,
                                sampling_locations: Tensor,
                                attention_weights: Tensor,
                                im2col_step: int = 64) -> Tensor:
    """Sample and weigh the values with the kernel chosen by
    :func:`select_ms_deform_attn_kernel`.

    Args:
        value (Tensor): (B, S, num_heads, C) projected values of all levels,
            S = sum of h_l * w_l.
        spatial_shapes (Tensor): (L, 2) (h, w) of each level, long.
        level_start_index (Tensor): (L,) start of each level in S, long.
        sampling_locations (Tensor): (B, Q, num_heads, L, P, 2) normalised
            (x, y) in [0, 1].
        attention_weights (Tensor): (B, Q, num_heads, L, P), softmax-ed over
            L * P.
        im2col_step (int): the CUDA kernel's batch chunk.

    Returns:
        Tensor: (B, Q, num_heads * C).
    """
    if select_ms_deform_attn_kernel(value.device) == CUDA_KERNEL:
        return _cuda_kernel(value, spatial_shapes, level_start_index,
                            sampling_locations, attention_weights,
                            im2col_step)
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes,
                                               sampling_locations,
                                               attention_weights)


def _cuda_kernel(value: Tensor, spatial_shapes: Tensor,
                 level_start_index: Tensor, sampling_locations: Tensor,
                 attention_weights: Tensor, im2col_step: int) -> Tensor:
    """mmcv's CUDA kernel, in fp32 unless all three float inputs are fp32
    or all fp16: it is compiled for float and half only (no bf16) and
    needs one dtype, while bf16 autocast hands it bf16 values and fp32
    locations. The output keeps the value's dtype."""
    floats = (value, sampling_locations, attention_weights)
    dtypes = {t.dtype for t in floats}
    if len(dtypes) == 1 and dtypes <= {torch.float32, torch.float16}:
        return MultiScaleDeformableAttnFunction.apply(
            value, spatial_shapes, level_start_index, sampling_locations,
            attention_weights, im2col_step)
    with torch.autocast(device_type='cuda', enabled=False):
        out = MultiScaleDeformableAttnFunction.apply(
            value.float(), spatial_shapes, level_start_index,
            sampling_locations.float(), attention_weights.float(),
            im2col_step)
    return out.to(value.dtype)


@MODELS.register_module()
class MSDeformAttn(MultiScaleDeformableAttention):
    """mmcv's multi-scale deformable attention whose kernel is chosen by
    :func:`select_ms_deform_attn_kernel` (see the module docstring).

    Parameters, state-dict keys, initialisation and arguments are mmcv's
    :class:`~mmcv.ops.MultiScaleDeformableAttention` (the name is that of the
    Deformable DETR reference code); only the dispatch at the end of
    :meth:`forward` differs, so checkpoints load into either class.
    """

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Attend from each query to P points per level and head.

        Args:
            query (Tensor): (B, Q, d) if ``batch_first`` else (Q, B, d).
            key (Tensor, optional): unused (deformable attention samples the
                values at predicted locations).
            value (Tensor, optional): (B, S, d) (or (S, B, d)); defaults to
                ``query``.
            identity (Tensor, optional): residual, shaped like ``query``;
                defaults to ``query``.
            query_pos (Tensor, optional): positional encoding added to
                ``query``, same shape.
            key_padding_mask (Tensor, optional): (B, S) bool, True = padding.
            reference_points (Tensor): (B, Q, L, 2) normalised points or
                (B, Q, L, 4) normalised (cx, cy, w, h) boxes.
            spatial_shapes (Tensor): (L, 2) (h, w) of each level.
            level_start_index (Tensor): (L,) start of each level in S.

        Returns:
            Tensor: shaped like ``query``.
        """
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        if int(spatial_shapes.prod(1).sum()) != num_value:
            raise ValueError(
                f'spatial_shapes {spatial_shapes.tolist()} cover '
                f'{int(spatial_shapes.prod(1).sum())} values, but value has '
                f'{num_value}')

        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        sampling_offsets = self.sampling_offsets(query).view(
            bs, num_query, self.num_heads, self.num_levels, self.num_points, 2)
        attention_weights = self.attention_weights(query).view(
            bs, num_query, self.num_heads, self.num_levels * self.num_points)
        attention_weights = attention_weights.softmax(-1).view(
            bs, num_query, self.num_heads, self.num_levels, self.num_points)
        if reference_points.shape[-1] == 2:
            offset_normalizer = torch.stack(
                [spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            sampling_locations = reference_points[:, :, None, :, None, :] \
                + sampling_offsets \
                / offset_normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:
            sampling_locations = reference_points[:, :, None, :, None, :2] \
                + sampling_offsets / self.num_points \
                * reference_points[:, :, None, :, None, 2:] * 0.5
        else:
            raise ValueError('the last dimension of reference_points must be '
                             f'2 or 4, got {reference_points.shape[-1]}')

        output = multi_scale_deformable_attn(value, spatial_shapes,
                                             level_start_index,
                                             sampling_locations,
                                             attention_weights,
                                             self.im2col_step)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity
