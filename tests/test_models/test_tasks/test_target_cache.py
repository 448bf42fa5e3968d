# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import torch
import torch.nn as nn

from mmupv2.models.tasks import TargetEmbeddingCache, weights_fingerprint


def _cache_and_model():
    model = nn.Linear(3, 2)
    cache = TargetEmbeddingCache(max_entries=2)
    calls = []

    def compute():
        calls.append(1)
        return model(torch.ones(1, 3))

    return model, cache, calls, compute


def test_hit_until_weights_change():
    model, cache, calls, compute = _cache_and_model()
    first = cache.get('a', compute, [model])
    second = cache.get('a', compute, [model])
    assert len(calls) == 1 and first is second
    assert not first.requires_grad
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optim.step()
    third = cache.get('a', compute, [model])
    assert len(calls) == 2 and not torch.equal(first, third)


def test_fingerprint_sees_every_kind_of_write():
    model = nn.Linear(3, 2)
    seen = {weights_fingerprint([model])}
    model.load_state_dict(nn.Linear(3, 2).state_dict())
    seen.add(weights_fingerprint([model]))
    with torch.no_grad():
        model.weight.add_(1)
    seen.add(weights_fingerprint([model]))
    model.double()
    seen.add(weights_fingerprint([model]))
    assert len(seen) == 4
    assert weights_fingerprint([model]) == weights_fingerprint([model])


def test_keys_and_eviction():
    model, cache, calls, compute = _cache_and_model()
    for key in ('a', 'b', 'a', 'c', 'b'):
        cache.get(key, compute, [model])
    # a, b computed; a hit; c evicts b (least recently used); b again
    assert len(calls) == 4 and len(cache) == 2
    cache.clear()
    assert len(cache) == 0
