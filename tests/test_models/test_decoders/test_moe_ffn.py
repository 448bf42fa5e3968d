# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch
import torch.nn.functional as F

from mmupv2.models.decoders import (
    MOE_ATTRIBUTES,
    AttributeGate,
    ConditionalMoEFFN,
)

TABLE = torch.tensor(list(MOE_ATTRIBUTES.values()), dtype=torch.float)


def _ffn(**kwargs) -> ConditionalMoEFFN:
    torch.manual_seed(0)
    return ConditionalMoEFFN(16, 32, **kwargs).eval()


def _expert(ffn, e, x):
    expert = ffn.experts[e]
    return expert['fc2'](F.gelu(expert['fc1'](x)))


def _param(ffn, e, fc, name):
    return getattr(ffn.experts[e][fc], name)


def test_gate_routes_top_k_with_normalised_weights():
    gate = AttributeGate(16, num_experts=8, top_k=2).eval()
    indices, gates = gate(TABLE)
    assert indices.shape == gates.shape == (len(TABLE), 2)
    assert bool((indices[:, 0] != indices[:, 1]).all())
    torch.testing.assert_close(gates.sum(-1), torch.ones(len(TABLE)))
    # deterministic in eval, noisy in training
    assert torch.equal(gate(TABLE)[1], gates)
    gate.train()
    assert not torch.equal(gate(TABLE)[1], gate(TABLE)[1])


def test_top1_is_exactly_one_expert():
    ffn = _ffn(top_k=1)
    x = torch.randn(2, 5, 16)
    (e, ), _ = ffn.gate(TABLE[2:3])
    out = ffn(x, [(0, 5, 2)], TABLE)
    torch.testing.assert_close(out, _expert(ffn, int(e), x))


def test_top2_merges_the_chosen_experts_weights():
    ffn = _ffn(top_k=2)
    x = torch.randn(2, 5, 16)
    (idx, ), (g, ) = ffn.gate(TABLE[0:1])
    w1, b1, w2, b2 = (
        g[0] * _param(ffn, int(idx[0]), fc, name) +
        g[1] * _param(ffn, int(idx[1]), fc, name)
        for fc in ('fc1', 'fc2') for name in ('weight', 'bias'))
    expected = F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)
    torch.testing.assert_close(ffn(x, [(0, 5, 0)], TABLE), expected)


def test_each_segment_uses_its_own_route():
    ffn = _ffn(top_k=1)
    x = torch.randn(2, 7, 16)
    out = ffn(x, [(0, 3, 0), (3, 7, 5)], TABLE)
    torch.testing.assert_close(out[:, :3], ffn(x[:, :3], [(0, 3, 0)], TABLE))
    torch.testing.assert_close(out[:, 3:], ffn(x[:, 3:], [(0, 4, 5)], TABLE))


def test_gradients_reach_gate_and_chosen_experts_only():
    ffn = _ffn(top_k=2)
    ffn(torch.randn(2, 5, 16), [(0, 5, 0)], TABLE).sum().backward()
    (idx, ), _ = ffn.gate(TABLE[0:1])
    used = [
        i for i, e in enumerate(ffn.experts)
        if e['fc1'].weight.grad is not None
    ]
    assert used == sorted(idx.tolist())
    assert all(ffn.experts[i]['fc2'].bias.grad.abs().sum() > 0 for i in used)
    assert ffn.gate.wg.weight.grad.abs().sum() > 0
    assert ffn.gate.tag_transform[0].weight.grad.abs().sum() > 0


def test_spans_must_cover_the_tokens():
    with pytest.raises(ValueError, match='cover'):
        _ffn()(torch.randn(1, 5, 16), [(0, 3, 0)], TABLE)


def test_bad_top_k():
    with pytest.raises(ValueError, match='top_k'):
        AttributeGate(16, num_experts=2, top_k=3)


def test_merged_weights_reused_at_inference_until_weights_change():
    ffn = _ffn(top_k=2)
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        first = ffn.merged_weights(TABLE[:2])
        assert all(a is b for a, b in zip(first, ffn.merged_weights(
            TABLE[:2])))
        out = ffn(x, [(0, 5, 0)], TABLE)
        for expert in ffn.experts:
            expert['fc1'].weight.add_(0.1)
        changed = ffn(x, [(0, 5, 0)], TABLE)
    fresh = ffn(x, [(0, 5, 0)], TABLE)  # with grad: never memoised
    assert not torch.allclose(out, changed)
    torch.testing.assert_close(changed, fresh)
    ffn.train()  # training frees the memo
    assert not ffn._merged_cache
