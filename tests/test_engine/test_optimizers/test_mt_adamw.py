# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import copy
import math

import pytest
import torch
import torch.nn as nn

from mmupv2.engine.optimizers import MTAdamW, MultiTaskOptimizer


def reference_step(params, grads, states, step, lrs, s_k, w_k, betas, eps,
                   wd):
    """MT-AdamW written from the formula, one tensor at a time."""
    norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
    b1, b2 = betas
    for p, g, st, lr in zip(params, grads, states, lrs):
        g = w_k * g / norm
        st['m'] = b1 * st['m'] + (1 - b1) / s_k * g
        st['v'] = b2 * st['v'] + (1 - b2) / s_k * g**2
        m_hat = st['m'] / (1 - b1**step)
        v_hat = st['v'] / (1 - b2**step)
        p.mul_(1 - lr * wd)
        p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


SHAPES = [(5, 3), (7, ), (2, 2, 2)]
LRS = [1e-2, 1e-2, 3e-3]  # two groups, different lr


def two_groups_float64():
    """(optimizer, its parameters, reference copies, reference states):
    MT-AdamW over float64 parameters of :data:`SHAPES` in two groups with
    the lrs :data:`LRS` (betas 0.9/0.99, eps 1e-8, weight decay 0.05)."""
    torch.manual_seed(0)
    params = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
    ref = [p.clone() for p in params]
    opt_params = [nn.Parameter(p.clone()) for p in params]
    opt = MTAdamW([
        dict(params=opt_params[:2], lr=LRS[0]),
        dict(params=opt_params[2:], lr=LRS[2])
    ], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
    states = [dict(m=torch.zeros_like(p), v=torch.zeros_like(p))
              for p in params]
    return opt, opt_params, ref, states


def test_matches_formula_float64():
    shapes, lrs = SHAPES, LRS
    opt, opt_params, ref, states = two_groups_float64()
    tasks = [(0.5, 1.0), (0.3, 2.0), (0.2, 0.5)]
    gen = torch.Generator().manual_seed(1)
    for step in range(1, 31):
        s_k, w_k = tasks[int(torch.randint(0, 3, (1, ), generator=gen))]
        grads = [torch.randn(s, dtype=torch.float64, generator=gen) * 3
                 for s in shapes]
        for p, g in zip(opt_params, grads):
            p.grad = g.clone()
        opt.set_task(sampling_ratio=s_k, scale=w_k)
        opt.step()
        reference_step(ref, grads, states, step, lrs, s_k, w_k, (0.9, 0.99),
                       1e-8, 0.05)
        for p, r in zip(opt_params, ref):
            torch.testing.assert_close(p.data, r, atol=1e-6, rtol=0)


def twin_linears(**optim):
    """Two equal linear layers, an MT-AdamW (lr 0.1, ``optim``) for each,
    and an input batch (8, 4)."""
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    optim = dict(dict(lr=0.1), **optim)
    return (a, b, MTAdamW(a.parameters(), **optim),
            MTAdamW(b.parameters(), **optim), torch.randn(8, 4))


def test_defaults_without_set_task_equal_unit_task():
    a, b, opt_a, opt_b, x = twin_linears()
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
        opt_b.set_task(1.0, 1.0)
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_scale_invariance_and_zero_gradient():
    """The gradient is normalised: scaling the loss changes nothing; an
    all-zero gradient gives no NaN (only weight decay acts)."""
    torch.manual_seed(0)
    base = nn.Linear(3, 2)
    results = []
    for factor in (1.0, 1000.0):
        model = copy.deepcopy(base)
        opt = MTAdamW(model.parameters(), lr=0.1, weight_decay=0)
        (factor * model(torch.ones(1, 3)).sum()).backward()
        opt.step()
        results.append(model.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1])
    model = copy.deepcopy(base)
    opt = MTAdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.isfinite(model.weight).all()
    torch.testing.assert_close(model.weight, base.weight * (1 - 0.1 * 0.1))


def test_converges_on_quadratic():
    target = torch.tensor([1.0, -2.0, 3.0])
    x = nn.Parameter(torch.zeros(3))
    opt = MTAdamW([x], lr=0.05, weight_decay=0)
    for i in range(400):
        opt.zero_grad()
        (x - target).pow(2).sum().backward()
        opt.set_task(sampling_ratio=(0.5, 0.25)[i % 2], scale=1.0)
        opt.step()
    torch.testing.assert_close(x.detach(), target, atol=0.05, rtol=0)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = MTAdamW(model.parameters(), lr=0.01)
    x = torch.randn(5, 4)

    def train(m, o, steps):
        for _ in range(steps):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.set_task(0.4, 1.5)
            o.step()

    train(model, opt, 3)
    clone = copy.deepcopy(model)
    opt2 = MTAdamW(clone.parameters(), lr=0.5)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.param_groups[0]['step'] == 3
    assert opt2.param_groups[0]['lr'] == 0.01
    train(model, opt, 2)
    train(clone, opt2, 2)
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)


def test_bad_arguments():
    p = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match='sampling_ratio'):
        MTAdamW(p).set_task(sampling_ratio=0)
    with pytest.raises(ValueError, match='scale'):
        MTAdamW(p).set_task(scale=-1)
    with pytest.raises(ValueError, match='betas'):
        MTAdamW(p, betas=(1.0, 0.9))


def _sharded_worker(rank, port, full_param, full_grads, out):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    shard = nn.Parameter(full_param.chunk(2)[rank].clone())
    opt = MTAdamW([shard], lr=0.1, weight_decay=0.01, sharded_grads=True)
    for g in full_grads:
        shard.grad = g.chunk(2)[rank].clone()
        opt.set_task(0.5, 2.0)
        opt.step()
    out[rank] = shard.detach().clone()
    dist.destroy_process_group()


def test_sharded_grads_match_unsharded():
    """Two ranks holding half a parameter each (as FSDP FULL_SHARD does)
    take the same steps as one process holding all of it."""
    import socket

    import torch.multiprocessing as mp
    torch.manual_seed(0)
    full = torch.randn(10, dtype=torch.float64)
    grads = [torch.randn(10, dtype=torch.float64) for _ in range(3)]
    ref = nn.Parameter(full.clone())
    opt = MTAdamW([ref], lr=0.1, weight_decay=0.01)
    for g in grads:
        ref.grad = g.clone()
        opt.set_task(0.5, 2.0)
        opt.step()
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = mp.get_context('spawn').Manager().dict()
    mp.spawn(_sharded_worker, args=(port, full, grads, out), nprocs=2)
    torch.testing.assert_close(torch.cat([out[0], out[1]]), ref.detach(),
                               atol=1e-10, rtol=0)


def test_is_a_multi_task_optimizer():
    """``MultiTaskLoop`` balances through the ``MultiTaskOptimizer``
    protocol: MT-AdamW implements it, torch's AdamW (the ablation) not."""
    p = [torch.nn.Parameter(torch.ones(2))]
    assert isinstance(MTAdamW(p), MultiTaskOptimizer)
    assert not isinstance(torch.optim.AdamW(p), MultiTaskOptimizer)
