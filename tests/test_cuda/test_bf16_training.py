# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""bf16 training on a GPU (``tools/misc/device_run.sh`` runs these).

1. MT-AdamW under mmengine's ``AmpOptimWrapper`` with ``dtype='bfloat16'``
   against the same optimizer in fp32: the same task sequence
   (``set_task(s_k, w_k)`` before every step), fp32 master weights, no step
   skipped, both losses fall, and the bf16 run's parameter updates agree
   with the fp32 run's to 10% of their size.
2. One training step per task of the tiny shapes model
   (``configs/uniperceiver_v2/upv2_tiny_shapes.py``: real image encoder
   with deformable attention, text encoder, MoE decoder) through the
   multi-task loop's own ``train_step`` with ``AmpOptimWrapper`` bf16:
   finite losses, finite gradients, every trained part moves; with the
   deformable attention on the PyTorch path and (expected to fail until
   mmupv2's layer runs mmcv's fp32-only kernel in fp32) on mmcv's kernel.

``tests/test_engine/test_optimizers/test_mt_adamw_amp.py`` checks the fp16
loss scaler path, on the CPU and on the GPU.
"""
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmupv2.engine.optimizers import MTAdamW
from mmupv2.engine.runner.multi_task_loop import (
    MultiTaskBatch,
    MultiTaskLoop,
    TaskEntry,
)
from mmupv2.models.layers import mmcv_cuda_kernel_compiled
from mmupv2.utils import register_all_modules

from ..test_models.tiny_shapes_model import CONFIG, build_model, fixed_batch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA device'),
]
TASKS = [(0.5, 1.0), (0.3, 2.0), (0.2, 0.5)] * 7


class Net(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(32, 256), nn.GELU(),
                                      nn.LayerNorm(256), nn.Linear(256, 256),
                                      nn.GELU())
        self.head = nn.Linear(256, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(len(TASKS), 64, 32, generator=gen)
    w = torch.randn(32, 8, generator=gen)
    return x.cuda(), (x @ w).cuda()


def test_mt_adamw_bf16_amp_matches_fp32():
    torch.manual_seed(0)
    ref = Net().cuda()
    amp = copy.deepcopy(ref)
    init = [p.detach().clone() for p in ref.parameters()]
    cfg = dict(type='MTAdamW', lr=3e-3, weight_decay=0.05)
    with DefaultScope.overwrite_default_scope('mmupv2'):
        ref_wrapper = build_optim_wrapper(
            ref, dict(type='OptimWrapper', optimizer=cfg))
        amp_wrapper = build_optim_wrapper(
            amp, dict(type='AmpOptimWrapper', dtype='bfloat16',
                      optimizer=cfg))
    assert isinstance(amp_wrapper.optimizer, MTAdamW)
    xs, ys = _data()
    losses = {'fp32': [], 'bf16': []}
    for x, y, (ratio, weight) in zip(xs, ys, TASKS):
        for name, model, wrapper in (('fp32', ref, ref_wrapper),
                                     ('bf16', amp, amp_wrapper)):
            with wrapper.optim_context(model):
                loss = (model(x) - y).pow(2).mean()
            wrapper.optimizer.set_task(sampling_ratio=ratio, scale=weight)
            wrapper.update_params(loss)
            losses[name].append(float(loss))
    assert amp_wrapper.optimizer.param_groups[0]['step'] == len(TASKS)
    for name, curve in losses.items():
        assert curve[-1] < 0.5 * curve[0], (name, curve)
    for p, q, p0 in zip(ref.parameters(), amp.parameters(), init):
        assert q.dtype == torch.float32  # master weights stay fp32
        update = (p - p0).abs().max()
        assert (q - p).abs().max() <= 0.1 * update + 1e-6


def _tiny_setup(root):
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    model = build_model(cfg, root).cuda().train()
    with DefaultScope.overwrite_default_scope('mmupv2'):
        wrapper = build_optim_wrapper(
            model, dict(cfg.optim_wrapper.to_dict(), type='AmpOptimWrapper',
                        dtype='bfloat16'))
    # the loop's own train_step without a Runner: it reads runner.model,
    # runner.optim_wrapper and sampling only
    loop = MultiTaskLoop.__new__(MultiTaskLoop)
    loop._runner = SimpleNamespace(model=model, optim_wrapper=wrapper)
    loop.sampling = 'unmixed'
    return cfg, model, wrapper, loop


def _bf16_steps(cuda_shapes_root):
    cfg, model, wrapper, loop = _tiny_setup(cuda_shapes_root)
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if p.requires_grad}
    moved = set()
    # the image tasks (MLM is text only: no deformable attention)
    for i, task in enumerate(('classification', 'detection', 'captioning',
                              'retrieval')):
        batch = fixed_batch(cfg, task, cuda_shapes_root, 2)
        log_vars = loop.train_step(
            MultiTaskBatch(i, [TaskEntry(task, task, 0.2, 1.0, None)],
                           [batch]))
        assert all(torch.isfinite(torch.as_tensor(v)).all()
                   for v in log_vars.values()), (task, log_vars)
        for n, p in model.named_parameters():
            if n in before and not torch.equal(p, before[n]):
                moved.add(n.split('.')[0])
    assert {'image_encoder', 'decoder'} <= moved


def test_tiny_model_bf16_step_pytorch_path(cuda_shapes_root, monkeypatch):
    import mmupv2.models.layers.ms_deform_attn as module
    monkeypatch.setattr(module, 'mmcv_cuda_kernel_compiled', lambda: False)
    monkeypatch.setattr(module, '_fallback_logged', True)
    _bf16_steps(cuda_shapes_root)


@pytest.mark.skipif(
    not (torch.cuda.is_available() and mmcv_cuda_kernel_compiled()),
    reason='mmcv was built without CUDA')
def test_tiny_model_bf16_step_mmcv_kernel(cuda_shapes_root):
    _bf16_steps(cuda_shapes_root)
