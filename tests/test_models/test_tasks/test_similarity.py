# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Eq. 6's learnable temperature and its cap (v1: ``exp(logit_scale)`` at
most 100)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmupv2.models.tasks import ClassificationTask, ScaledCosineSimilarity


def _features():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(3, 8, generator=gen), torch.randn(5, 8, generator=gen)


def _cosine(queries, targets):
    return F.normalize(queries, dim=-1) @ F.normalize(targets, dim=-1).T


def test_below_the_cap_the_temperature_learns():
    sim = ScaledCosineSimilarity(init_temperature=0.07)
    queries, targets = _features()
    logits = sim(queries, targets)
    cosine = _cosine(queries, targets)
    torch.testing.assert_close(logits, cosine / 0.07)
    logits.sum().backward()
    # d/d logit_scale of sum(cos * exp(logit_scale)) = sum(cos) / tau
    torch.testing.assert_close(sim.logit_scale.grad, cosine.sum() / 0.07)


@pytest.mark.parametrize('max_scale', [100.0, 50.0])
def test_scale_is_capped_and_gets_no_gradient_above_the_cap(max_scale):
    sim = ScaledCosineSimilarity(init_temperature=0.07, max_scale=max_scale)
    with torch.no_grad():
        sim.logit_scale.fill_(math.log(1000.0))  # learnt past the cap
    queries, targets = _features()
    logits = sim(queries, targets)
    assert sim.scale.item() == pytest.approx(max_scale)
    torch.testing.assert_close(logits, _cosine(queries, targets) * max_scale)
    logits.sum().backward()
    assert float(sim.logit_scale.grad) == 0.0


def test_tasks_pass_their_cap_and_temperature_on():
    task = ClassificationTask(classes=['a'], init_temperature=0.001,
                              max_logit_scale=30.0)
    assert task.similarity.logit_scale.item() == pytest.approx(
        math.log(1000.0))
    assert task.similarity.scale.item() == pytest.approx(30.0)
    assert ClassificationTask().similarity.max_scale == 100.0
