# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Mixed sampling's schedule (how many samples of each entry a step holds)
and the batch sampler that draws them."""
import numpy as np
import pytest
from mmengine.dataset import InfiniteSampler
from torch.utils.data import SequentialSampler

from mmupv2.engine.runner import (
    MixedBatchSampler,
    MixedSchedule,
    default_mixed_batch_size,
    mixed_shares,
    normalise_ratios,
)

#: the paper's Table 8: (s_k, per-GPU batch size) of every entry
TABLE8 = [(0.1, 28), (0.25, 1), (0.05, 256), (0.09831, 24), (0.08514, 24),
          (0.04428, 24), (0.02973, 24), (0.0192, 24), (0.02328, 24),
          (0.09831, 28), (0.08514, 28), (0.04428, 28), (0.02973, 28),
          (0.0192, 28), (0.02328, 28)]


def test_shares_and_default_batch_size():
    ratios = normalise_ratios([0.5, 0.2, 0.3])
    sizes = [4, 2, 4]
    # entry k holds s_k of the batch capacity: s_k b_k samples
    assert mixed_shares(ratios, sizes) == pytest.approx(
        [2.0 / 3.6, 0.4 / 3.6, 1.2 / 3.6])
    # the expected per-rank batch of an unmixed step, sum_k s_k b_k = 3.6
    assert default_mixed_batch_size(ratios, sizes) == 4
    # equal batch sizes: the sample shares are the s_k
    assert mixed_shares(ratios, [8, 8, 8]) == pytest.approx(ratios)
    assert default_mixed_batch_size(ratios, [8, 8, 8]) == 8
    with pytest.raises(ValueError, match='batch sizes must be >= 1'):
        mixed_shares(ratios, [4, 0, 4])
    with pytest.raises(ValueError, match='mixed_batch_size must be >= 1'):
        MixedSchedule([1.0], 0, seed=0)


def test_every_step_holds_the_batch_size_and_the_shares():
    ratios = normalise_ratios([s for s, _ in TABLE8])
    sizes = [b for _, b in TABLE8]
    shares = mixed_shares(ratios, sizes)
    n = default_mixed_batch_size(ratios, sizes)
    assert n == 31  # sum_k s_k b_k = 31.45 samples per GPU
    schedule = MixedSchedule(shares, n, seed=7)
    steps = 20000
    counts = schedule.counts_range(0, steps)
    assert counts.shape == (steps, len(TABLE8))
    # the same samples per rank in every step
    assert (counts.sum(1) == n).all()
    # over the run each entry has its share of the samples, up to a few
    # samples (the Weyl sequence's discrepancy; measured 2.1 here, 2.4 over
    # 1e5 steps), i.e. its s_k of the batch capacity
    total = counts.sum(0)
    expected = np.asarray(shares) * n * steps
    assert np.abs(total - expected).max() <= 3, total - expected
    capacity = total / np.asarray(sizes)
    np.testing.assert_allclose(capacity / capacity.sum(), ratios,
                               rtol=1e-3)
    # each step is close to its share: less than 2 samples off
    assert np.abs(counts - np.asarray(shares) * n).max() < 2
    # COCO (1 image per GPU at s_k = 0.25) is expected 0.25 * 31 / 31.45
    # times per step: it is in that fraction of the steps
    assert schedule.expected[1] == pytest.approx(0.2464, abs=1e-4)
    assert (counts[:, 1] > 0).mean() == pytest.approx(
        schedule.expected[1], abs=0.002)


def test_schedule_is_a_pure_function_of_seed_and_step():
    schedule = MixedSchedule([0.5, 0.2, 0.3], 4, seed=7)
    counts = schedule.counts_range(0, 300)
    assert [schedule.counts(t) for t in (0, 17, 299)] == [
        counts[t].tolist() for t in (0, 17, 299)]
    again = MixedSchedule([0.5, 0.2, 0.3], 4, seed=7)
    assert (again.counts_range(0, 300) == counts).all()
    other = MixedSchedule([0.5, 0.2, 0.3], 4, seed=8)
    assert not (other.counts_range(0, 300) == counts).all()
    # what a resumed run needs: the samples of the steps before it
    for t in (0, 1, 123, 300):
        assert schedule.counts_before(t) == counts[:t].sum(0).tolist()
    # the sizes of one entry's batches: its non-zero counts, in order
    sizes = schedule.sizes(1, start=5, chunk=7)
    column = counts[5:, 1]
    assert [next(sizes) for _ in range(20)] == column[column > 0][:20].tolist()
    # an entry without a share gives no batch
    assert list(MixedSchedule([1.0, 0.0], 3, 0).sizes(1, 0)) == []


def test_batch_sampler_draws_the_sizes_and_skips_on_resume():
    dataset = list(range(10))
    sampler = MixedBatchSampler(SequentialSampler(dataset), batch_size=4)
    assert len(sampler) == 3  # one pass in batches of b_k
    with pytest.raises(RuntimeError, match='start'):
        next(iter(sampler))
    sampler.start(iter([3, 1, 5, 4]), skip=2)
    # a finite sampler is restarted: batches span passes over the data
    assert list(sampler) == [[2, 3, 4], [5], [6, 7, 8, 9, 0], [1, 2, 3, 4]]

    # InfiniteSampler: the index stream of a resumed sampler continues
    # where the uninterrupted one was
    def stream(skip, sizes):
        s = MixedBatchSampler(
            InfiniteSampler(dataset, shuffle=True, seed=3), batch_size=4)
        s.start(iter(sizes), skip=skip)
        return list(s)

    full = stream(0, [2, 3, 1, 4, 2])
    assert stream(6, [4, 2]) == full[3:]
    with pytest.raises(ValueError, match='positive int'):
        MixedBatchSampler(SequentialSampler(dataset), batch_size=0)
