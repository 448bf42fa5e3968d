# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttnFunction,
    multi_scale_deformable_attn_pytorch,
)

from mmupv2.models.layers import (
    CUDA_KERNEL,
    PYTORCH_KERNEL,
    MSDeformAttn,
    mmcv_cuda_kernel_compiled,
    multi_scale_deformable_attn,
    select_ms_deform_attn_kernel,
)
from mmupv2.models.layers import ms_deform_attn as module

SPATIAL_SHAPES = torch.tensor([[8, 6], [4, 3], [2, 2]])
LEVEL_START = torch.tensor([0, 48, 60])
NUM_VALUES = 64  # 8 * 6 + 4 * 3 + 2 * 2


def _kernel_inputs(device='cpu', batch=2, queries=5, heads=2, channels=4,
                   points=3):
    torch.manual_seed(0)
    levels = len(SPATIAL_SHAPES)
    value = torch.rand(batch, NUM_VALUES, heads, channels, device=device)
    locations = torch.rand(batch, queries, heads, levels, points, 2,
                           device=device)
    weights = torch.rand(batch, queries, heads, levels, points,
                         device=device)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    return (value, SPATIAL_SHAPES.to(device), LEVEL_START.to(device),
            locations, weights)


@pytest.fixture
def fresh_log(monkeypatch):
    """Reset the log-once flag and record what would be logged."""
    records = []
    monkeypatch.setattr(module, '_fallback_logged', False)
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kwargs: records.append(msg))
    return records


def test_cpu_uses_pytorch_path(fresh_log):
    assert select_ms_deform_attn_kernel(torch.device('cpu')) == PYTORCH_KERNEL
    assert fresh_log == []


def test_cuda_uses_compiled_kernel(monkeypatch, fresh_log):
    monkeypatch.setattr(module, 'mmcv_cuda_kernel_compiled', lambda: True)
    assert select_ms_deform_attn_kernel(
        torch.device('cuda', 0)) == CUDA_KERNEL
    assert fresh_log == []


def test_cuda_without_kernel_falls_back_and_logs_once(monkeypatch,
                                                      fresh_log):
    monkeypatch.setattr(module, 'mmcv_cuda_kernel_compiled', lambda: False)
    for _ in range(3):
        assert select_ms_deform_attn_kernel(
            torch.device('cuda', 0)) == PYTORCH_KERNEL
    assert len(fresh_log) == 1
    assert 'without CUDA' in fresh_log[0]
    assert 'multi_scale_deformable_attn_pytorch' in fresh_log[0]


def test_fallback_dispatches_to_pytorch(monkeypatch):
    """When the selection says PyTorch, the compiled op is never called."""
    def fail(*args):
        raise AssertionError('the compiled kernel must not be called')

    monkeypatch.setattr(MultiScaleDeformableAttnFunction, 'apply', fail)
    inputs = _kernel_inputs()
    expected = multi_scale_deformable_attn_pytorch(inputs[0], inputs[1],
                                                   *inputs[3:])
    torch.testing.assert_close(multi_scale_deformable_attn(*inputs),
                               expected)


def test_module_matches_mmcv():
    """MSDeformAttn is mmcv's module: same state dict, same outputs and
    gradients (box and point references, padding mask)."""
    torch.manual_seed(0)
    kwargs = dict(embed_dims=32, num_heads=4, num_levels=3, num_points=2,
                  batch_first=True, dropout=0.0)
    ours, ref = MSDeformAttn(**kwargs), MultiScaleDeformableAttention(
        **kwargs)
    for p in ref.parameters():  # non-trivial offsets and weights
        torch.nn.init.normal_(p, std=0.1)
    ours.load_state_dict(ref.state_dict())
    query = torch.randn(2, 7, 32)
    value = torch.randn(2, NUM_VALUES, 32)
    padding = torch.zeros(2, NUM_VALUES, dtype=torch.bool)
    padding[1, 40:] = True
    for ref_dim in (2, 4):
        reference = torch.rand(2, 7, 3, ref_dim)
        outs, grads = [], []
        for attn in (ours, ref):
            q = query.clone().requires_grad_()
            out = attn(q, value=value, key_padding_mask=padding,
                       reference_points=reference,
                       spatial_shapes=SPATIAL_SHAPES,
                       level_start_index=LEVEL_START)
            out.sum().backward()
            outs.append(out)
            grads.append(q.grad)
        torch.testing.assert_close(outs[0], outs[1])
        torch.testing.assert_close(grads[0], grads[1])


def test_module_rejects_bad_shapes():
    attn = MSDeformAttn(embed_dims=8, num_heads=2, num_levels=3,
                        num_points=1, batch_first=True)
    with pytest.raises(ValueError, match='spatial_shapes'):
        attn(torch.randn(1, 2, 8), value=torch.randn(1, 10, 8),
             reference_points=torch.rand(1, 2, 3, 2),
             spatial_shapes=SPATIAL_SHAPES, level_start_index=LEVEL_START)
    with pytest.raises(ValueError, match='2 or 4'):
        attn(torch.randn(1, 2, 8), value=torch.randn(1, NUM_VALUES, 8),
             reference_points=torch.rand(1, 2, 3, 3),
             spatial_shapes=SPATIAL_SHAPES, level_start_index=LEVEL_START)


@pytest.mark.gpu
@pytest.mark.skipif(
    not (torch.cuda.is_available() and mmcv_cuda_kernel_compiled()),
    reason='needs a GPU and mmcv compiled with CUDA')
def test_cuda_kernel_agrees_with_pytorch_path():
    inputs = _kernel_inputs('cuda')
    value, locations, weights = (inputs[0].double().requires_grad_(),
                                 inputs[3].double().requires_grad_(),
                                 inputs[4].double().requires_grad_())
    results = []
    for kernel in (CUDA_KERNEL, PYTORCH_KERNEL):
        for t in (value, locations, weights):
            t.grad = None
        if kernel == CUDA_KERNEL:
            out = MultiScaleDeformableAttnFunction.apply(
                value, inputs[1], inputs[2], locations, weights, 64)
        else:
            out = multi_scale_deformable_attn_pytorch(value, inputs[1],
                                                      locations, weights)
        out.sum().backward()
        results.append((out.detach(), value.grad.clone(),
                        locations.grad.clone(), weights.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
