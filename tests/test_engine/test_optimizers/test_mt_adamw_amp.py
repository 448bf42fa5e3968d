# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""MTAdamW under mixed precision and inside mmengine's optimizer wrappers.

**Why the AMP test patches mmengine on the CPU.** mmengine 0.10.7's
``AmpOptimWrapper.__init__`` asserts ``is_cuda_available() or
is_npu_available() or is_mlu_available() or is_musa_available()``
(``'AmpOptimizerWrapper is only available training on gpu, npu, mlu or
musa'``), and its module builds the scaler from ``torch.cuda.amp.GradScaler``,
which disables itself without CUDA (``scale()`` then returns the loss
unchanged, so nothing would be tested). On a machine without CUDA the test
therefore replaces exactly these two names in
``mmengine.optim.optimizer.amp_optimizer_wrapper``: the device check (to
``True``) and ``GradScaler`` (to ``torch.amp.GradScaler('cpu', ...)``, the
same class with a CPU ``_scale``). Everything else is mmengine's and torch's
real code: ``AmpOptimWrapper.update_params`` → ``loss_scaler.scale(loss)
.backward()`` → ``loss_scaler.step(optimizer)`` (which unscales the gradients
in place, skips the step on inf/NaN, else calls ``MTAdamW.step``) →
``loss_scaler.update()``. With CUDA the unpatched wrapper is used.

MTAdamW divides the gradient by its global norm, so its update is invariant
to a constant gradient factor by construction: equal parameters alone would
not show that the scaler unscaled before the norm was taken. The test
therefore also records the norm ``MTAdamW.step`` sees and compares it with the
fp32 gradient norm of the run without a scaler.
"""
import copy
import functools
from typing import List

import pytest
import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper as amp_module
from mmengine.registry import DefaultScope

from mmupv2.engine.optimizers import MTAdamW

HAS_CUDA = torch.cuda.is_available()
DEVICES = ['cpu', pytest.param(
    'cuda', marks=[pytest.mark.gpu,
                   pytest.mark.skipif(not HAS_CUDA, reason='needs CUDA')])]
TASKS = [(0.5, 1.0), (0.3, 2.0), (0.2, 0.5), (0.5, 1.0), (0.3, 2.0)]


@pytest.fixture(autouse=True)
def mmupv2_scope():
    """Build optimizers by name in the mmupv2 scope, as configs do."""
    with DefaultScope.overwrite_default_scope('mmupv2'):
        yield


def amp_on(device: str, monkeypatch) -> None:
    """Make ``AmpOptimWrapper`` buildable with a working scaler on
    ``device`` (see the module docstring); nothing to do on CUDA."""
    if device == 'cpu' and not HAS_CUDA:
        monkeypatch.setattr(amp_module, 'is_cuda_available', lambda: True)
        monkeypatch.setattr(amp_module, 'GradScaler',
                            functools.partial(torch.amp.GradScaler, 'cpu'))


class Net(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(6, 8), nn.Tanh())
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def record_norms(optimizer: MTAdamW) -> List[float]:
    """Wrap ``optimizer.step`` to record the gradient norm it sees."""
    norms: List[float] = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        norms.append(float(optimizer.global_grad_norm()))
        return step(*args, **kwargs)

    optimizer.step = recording_step
    return norms


def batches(device: str, num: int = len(TASKS)) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(4, 6, generator=gen).to(device) for _ in range(num)]


def mt_adamw_cfg() -> dict:
    return dict(type='MTAdamW', lr=1e-2, betas=(0.9, 0.99),
                weight_decay=0.05)


@pytest.mark.skipif(HAS_CUDA, reason='checks the CPU refusal')
def test_amp_optim_wrapper_refuses_cpu():
    with pytest.raises(AssertionError, match='only available training'):
        build_optim_wrapper(
            Net(), dict(type='AmpOptimWrapper', optimizer=mt_adamw_cfg()))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('loss_scale', [
    2.0**16, 1000.0,
    dict(init_scale=2.0**24, growth_interval=2)
], ids=['static-2^16', 'static-1000', 'dynamic-2^24'])
def test_amp_update_equals_fp32_update(device, loss_scale, monkeypatch):
    amp_on(device, monkeypatch)
    torch.manual_seed(0)
    ref_model = Net().to(device)
    amp_model = copy.deepcopy(ref_model)
    ref_opt = MTAdamW(ref_model.parameters(), lr=1e-2, betas=(0.9, 0.99),
                      weight_decay=0.05)
    wrapper = build_optim_wrapper(
        amp_model, dict(type='AmpOptimWrapper', loss_scale=loss_scale,
                        optimizer=mt_adamw_cfg()))
    assert isinstance(wrapper.optimizer, MTAdamW)
    assert wrapper.loss_scaler.is_enabled()
    ref_norms = record_norms(ref_opt)
    amp_norms = record_norms(wrapper.optimizer)
    for x, (ratio, weight) in zip(batches(device), TASKS):
        ref_opt.zero_grad()
        ref_model(x).pow(2).mean().backward()
        ref_opt.set_task(ratio, weight)
        ref_opt.step()

        assert wrapper.loss_scaler.get_scale() > 1
        wrapper.optimizer.set_task(ratio, weight)
        wrapper.update_params(amp_model(x).pow(2).mean())

    assert len(amp_norms) == len(TASKS)  # no step was skipped
    # MTAdamW saw the unscaled gradient, not loss_scale times it
    torch.testing.assert_close(
        torch.tensor(amp_norms), torch.tensor(ref_norms), rtol=1e-6, atol=0)
    for p, q in zip(ref_model.parameters(), amp_model.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6)
    assert wrapper.optimizer.param_groups[0]['step'] == len(TASKS)


@pytest.mark.parametrize('device', DEVICES)
def test_amp_skips_step_with_inf_gradients(device, monkeypatch):
    amp_on(device, monkeypatch)
    torch.manual_seed(0)
    model = Net().to(device)
    wrapper = build_optim_wrapper(
        model, dict(type='AmpOptimWrapper', loss_scale='dynamic',
                    optimizer=mt_adamw_cfg()))
    x = batches(device, 1)[0]
    wrapper.update_params(model(x).pow(2).mean())
    params = [p.detach().clone() for p in model.parameters()]
    exp_avgs = [wrapper.optimizer.state[p]['exp_avg'].clone()
                for p in model.parameters()]
    scale = wrapper.loss_scaler.get_scale()

    wrapper.update_params(model(x).mean() * float('inf'))

    assert wrapper.optimizer.param_groups[0]['step'] == 1
    for p, before, m in zip(model.parameters(), params, exp_avgs):
        assert torch.equal(p, before)
        assert torch.equal(wrapper.optimizer.state[p]['exp_avg'], m)
    assert wrapper.loss_scaler.get_scale() == scale / 2


def test_paramwise_lr_mult_and_plain_adamw_ablation():
    model = Net()
    cfg = dict(
        type='OptimWrapper',
        optimizer=mt_adamw_cfg(),
        paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
    backbone = {id(p) for p in model.backbone.parameters()}
    for optimizer_type, cls in (('MTAdamW', MTAdamW),
                                ('AdamW', torch.optim.AdamW)):
        wrapper = build_optim_wrapper(
            model, dict(cfg, optimizer=dict(cfg['optimizer'],
                                            type=optimizer_type)))
        assert isinstance(wrapper, OptimWrapper)
        assert type(wrapper.optimizer) is cls
        seen = set()
        for group in wrapper.optimizer.param_groups:
            for p in group['params']:
                seen.add(id(p))
                expected = 1e-3 if id(p) in backbone else 1e-2
                assert group['lr'] == pytest.approx(expected), optimizer_type
                assert group['weight_decay'] == 0.05
        assert seen == {id(p) for p in model.parameters()}
