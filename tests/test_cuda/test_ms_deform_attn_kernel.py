# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmcv's deformable-attention CUDA kernel against the PyTorch path, at the
image encoder's shapes (GPU only; ``tools/misc/device_run.sh`` runs these).

The kernel is what mmupv2 uses on a GPU when mmcv was built with CUDA
(``mmupv2/models/layers/ms_deform_attn.py``); the PyTorch path is what it
uses otherwise. They must agree to 1e-4 in the outputs and in the gradients
of the values, sampling locations and attention weights, in fp32, at the
R50 encoder's widths (d = 256, 8 heads, 4 levels, 4 points) and on a
padded batch. ``tests/test_models/test_layers/test_ms_deform_attn.py``
checks the same in float64 at toy sizes.
"""
import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttnFunction,
    multi_scale_deformable_attn_pytorch,
)

from mmupv2.models.layers import (
    CUDA_KERNEL,
    MSDeformAttn,
    mmcv_cuda_kernel_compiled,
    select_ms_deform_attn_kernel,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA device'),
]
needs_kernel = pytest.mark.skipif(
    not (torch.cuda.is_available() and mmcv_cuda_kernel_compiled()),
    reason='mmcv was built without CUDA (its kernel is not there)')
#: the R50 encoder's 4 levels for a 256 x 320 image (strides 8-64)
SHAPES = [[32, 40], [16, 20], [8, 10], [4, 5]]


def _inputs(batch=2, queries=300, heads=8, channels=32, points=4, seed=0):
    gen = torch.Generator(device='cuda').manual_seed(seed)
    shapes = torch.tensor(SHAPES, device='cuda')
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    num_values = int(shapes.prod(1).sum())
    levels = len(SHAPES)
    value = torch.randn(batch, num_values, heads, channels, device='cuda',
                        generator=gen)
    locations = torch.rand(batch, queries, heads, levels, points, 2,
                           device='cuda', generator=gen)
    weights = torch.rand(batch, queries, heads, levels * points,
                         device='cuda', generator=gen).softmax(-1).view(
                             batch, queries, heads, levels, points)
    return value, shapes, starts, locations, weights


def _run(kernel, value, shapes, starts, locations, weights):
    leaves = [t.detach().clone().requires_grad_()
              for t in (value, locations, weights)]
    if kernel == 'cuda':
        out = MultiScaleDeformableAttnFunction.apply(
            leaves[0], shapes, starts, leaves[1], leaves[2], 64)
    else:
        out = multi_scale_deformable_attn_pytorch(leaves[0], shapes,
                                                  leaves[1], leaves[2])
    grad = torch.randn(out.shape, device='cuda', generator=torch.Generator(
        device='cuda').manual_seed(1))
    out.backward(grad)
    return [out.detach()] + [t.grad for t in leaves]


@needs_kernel
@pytest.mark.parametrize('batch', [1, 2])
def test_kernel_matches_pytorch_path_fp32(batch):
    inputs = _inputs(batch=batch)
    cuda = _run('cuda', *inputs)
    torch_path = _run('pytorch', *inputs)
    for name, a, b in zip(('output', 'd value', 'd locations', 'd weights'),
                          cuda, torch_path):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4,
                                   msg=lambda m, n=name: f'{n}: {m}')


@needs_kernel
def test_layer_uses_kernel_and_matches_pytorch_path(monkeypatch):
    """MSDeformAttn on CUDA picks the kernel; forcing the PyTorch path gives
    the same output and input gradient."""
    import mmupv2.models.layers.ms_deform_attn as module
    assert select_ms_deform_attn_kernel(torch.device('cuda')) == CUDA_KERNEL
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=256, num_heads=8, num_levels=4,
                        num_points=4, batch_first=True).cuda()
    for p in attn.parameters():  # non-trivial offsets and weights
        torch.nn.init.normal_(p, std=0.05)
    shapes = torch.tensor(SHAPES, device='cuda')
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    num_values = int(shapes.prod(1).sum())
    query = torch.randn(2, 50, 256, device='cuda')
    value = torch.randn(2, num_values, 256, device='cuda')
    padding = torch.zeros(2, num_values, dtype=torch.bool, device='cuda')
    padding[1, num_values // 2:] = True
    reference = torch.rand(2, 50, 4, 2, device='cuda')
    results = []
    for kernel in ('cuda', 'pytorch'):
        if kernel == 'pytorch':
            monkeypatch.setattr(module, 'mmcv_cuda_kernel_compiled',
                                lambda: False)
            monkeypatch.setattr(module, '_fallback_logged', True)
        q = query.clone().requires_grad_()
        out = attn(q, value=value, key_padding_mask=padding,
                   reference_points=reference, spatial_shapes=shapes,
                   level_start_index=starts)
        out.sum().backward()
        results.append((out.detach(), q.grad))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-4,
                               rtol=1e-4)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-4,
                               rtol=1e-4)


@needs_kernel
def test_layer_under_bf16_autocast():
    _check_bf16_close_to_fp32()


def test_pytorch_path_under_bf16_autocast(monkeypatch):
    """Without the kernel (or with it switched off) the layer runs under
    bf16 autocast on the GPU and stays close to fp32."""
    import mmupv2.models.layers.ms_deform_attn as module
    monkeypatch.setattr(module, 'mmcv_cuda_kernel_compiled', lambda: False)
    monkeypatch.setattr(module, '_fallback_logged', True)
    _check_bf16_close_to_fp32()


def _check_bf16_close_to_fp32():
    """MSDeformAttn at the encoder's widths, fp32 vs bf16 autocast: finite
    input gradients, outputs within bf16's precision."""
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=256, num_heads=8, num_levels=4,
                        num_points=4, batch_first=True).cuda()
    shapes = torch.tensor(SHAPES, device='cuda')
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    num_values = int(shapes.prod(1).sum())
    query = torch.randn(2, 50, 256, device='cuda', requires_grad=True)
    kwargs = dict(value=torch.randn(2, num_values, 256, device='cuda'),
                  reference_points=torch.rand(2, 50, 4, 2, device='cuda'),
                  spatial_shapes=shapes, level_start_index=starts)
    expected = attn(query, **kwargs)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        out = attn(query, **kwargs)
    out.float().sum().backward()
    assert torch.isfinite(query.grad).all()
    torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)
