# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""MT-AdamW with several tasks in one update (mixed sampling's parts) and
with a global gradient norm handed in by the caller (ZeRO)."""
import math

import pytest
import torch
import torch.nn as nn

from mmupv2.engine.optimizers import MTAdamW

from .test_mt_adamw import LRS, SHAPES, twin_linears, two_groups_float64


def reference_update(params, parts, states, step, lrs, betas, eps, wd):
    """One update from the docstring's formula: ``parts`` is a list of
    ``(grads, s, w)`` (a grad is ``None`` where the part does not reach the
    parameter); each part is normalised by its own global norm."""
    b1, b2 = betas
    reached = [any(g[i] is not None for g, _, _ in parts)
               for i in range(len(params))]
    for i, st in enumerate(states):
        if reached[i]:
            st['m'] = b1 * st['m']
            st['v'] = b2 * st['v']
    for grads, s, w in parts:
        norm = math.sqrt(
            sum(float((g**2).sum()) for g in grads if g is not None))
        for g, st in zip(grads, states):
            if g is None:
                continue
            g = w * g / norm
            st['m'] = st['m'] + (1 - b1) / s * g
            st['v'] = st['v'] + (1 - b2) / s * g**2
    for p, st, lr, hit in zip(params, states, lrs, reached):
        if not hit:
            continue
        m_hat = st['m'] / (1 - b1**step)
        v_hat = st['v'] / (1 - b2**step)
        p.mul_(1 - lr * wd)
        p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def test_parts_of_one_update_match_formula_float64():
    """Updates of 1-3 parts, some parameters reached by only some parts
    (a task head), some by none in an update; two groups with their own
    lr; s above 1 (fewer samples than expected)."""
    shapes, lrs = SHAPES, LRS
    opt, opt_params, ref, states = two_groups_float64()
    gen = torch.Generator().manual_seed(1)
    for step in range(1, 21):
        parts = []
        for _ in range(1 + step % 3):
            grads = [
                torch.randn(s, dtype=torch.float64, generator=gen) * 3
                if bool(torch.rand(1, generator=gen) < 0.7) or i == 0 else
                None for i, s in enumerate(shapes)
            ]
            s = float(torch.empty(1).uniform_(0.3, 2.5, generator=gen))
            w = float(torch.empty(1).uniform_(0.2, 2.0, generator=gen))
            parts.append((grads, s, w))
        for i, (grads, s, w) in enumerate(parts):
            for p, g in zip(opt_params, grads):
                p.grad = None if g is None else g.clone()
            opt.set_task(sampling_ratio=s, scale=w,
                         final=i == len(parts) - 1)
            before = [p.detach().clone() for p in opt_params]
            opt.step()
            if i < len(parts) - 1:  # a part moves no parameter
                for p, b in zip(opt_params, before):
                    assert torch.equal(p, b)
        reference_update(ref, parts, states, step, lrs, (0.9, 0.99), 1e-8,
                         0.05)
        for p, r in zip(opt_params, ref):
            torch.testing.assert_close(p.data, r, atol=1e-9, rtol=0)
        assert all(g['step'] == step for g in opt.param_groups)


def test_one_final_part_is_the_unmixed_step():
    """``final=True`` (the default) after one backward is the plain step,
    bitwise."""
    a, b, opt_a, opt_b, x = twin_linears(weight_decay=0.01)
    for it in range(4):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).pow(it + 1).sum().backward()
        opt_a.set_task(0.4, 1.5)
        opt_b.set_task(0.4, 1.5, final=True)
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_global_grad_norm_handed_in():
    """A norm handed in replaces the computed one until cleared: with twice
    the true norm and w the step is the computed step with w / 2."""
    a, b, opt_a, opt_b, x = twin_linears()
    for model in (a, b):
        model(x).pow(2).sum().backward()
    true_norm = float(opt_a.global_grad_norm())
    opt_a.set_global_grad_norm(2 * true_norm)
    assert float(opt_a.global_grad_norm()) == pytest.approx(2 * true_norm)
    opt_a.set_task(0.5, 1.0)
    opt_b.set_task(0.5, 0.5)
    opt_a.step()
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-7, rtol=0)
    opt_a.set_global_grad_norm(None)
    assert float(opt_a.global_grad_norm()) == pytest.approx(true_norm)
    for bad in (float('nan'), float('inf'), -1.0):
        with pytest.raises(ValueError, match='global gradient norm'):
            opt_a.set_global_grad_norm(bad)


def test_sampling_ratio_of_a_part():
    """A mixed part's ratio (expected / actual samples) may exceed 1; it
    must be a finite number > 0."""
    opt = MTAdamW([nn.Parameter(torch.zeros(1))])
    opt.set_task(sampling_ratio=2.5, scale=1.0, final=False)
    assert (opt.sampling_ratio, opt.final) == (2.5, False)
    for bad in (0.0, -0.5, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='sampling_ratio'):
            opt.set_task(sampling_ratio=bad)
    with pytest.raises(ValueError, match='scale'):
        opt.set_task(scale=float('nan'))
