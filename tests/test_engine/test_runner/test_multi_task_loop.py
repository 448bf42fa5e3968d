# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import copy
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmupv2.engine.runner import (
    MixedSchedule,
    MultiTaskLoop,
    default_mixed_batch_size,
    mixed_shares,
    normalise_ratios,
    scheduled_entry,
)
from mmupv2.testing import ToyTaskDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


class Recorder(Hook):
    """Records, per iteration: the entries, the samples drawn, and the task
    the optimizer was told about."""
    priority = 'LOWEST'

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        opt = runner.optim_wrapper.optimizer
        batches = data_batch if isinstance(data_batch, dict) and \
            'data_samples' not in data_batch else {'_': data_batch}
        samples = {
            name: [s.sample_idx for s in b['data_samples']]
            for name, b in batches.items()
        }
        self.rows.append(
            dict(iter=batch_idx,
                 task=runner.message_hub.get_info('train_task'),
                 samples=samples,
                 set_task=(getattr(opt, 'sampling_ratio', None),
                           getattr(opt, 'scale', None)),
                 inner=runner.optim_wrapper._inner_count))


def _runner(tmp_path, **overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.merge_from_dict(overrides)
    runner = Runner.from_cfg(cfg)
    recorder = Recorder()
    runner.register_hook(recorder)
    return runner, recorder


def test_schedule_frequencies_match_ratios():
    ratios = normalise_ratios([5, 2, 3])
    assert ratios == pytest.approx([0.5, 0.2, 0.3])
    n = 2000
    counts = [0, 0, 0]
    for it in range(n):
        counts[scheduled_entry(seed=11, iteration=it, ratios=ratios)] += 1
    for count, p in zip(counts, ratios):
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(count - n * p) <= 3 * sigma, (counts, ratios)
    # a pure function: same inputs, same answer; the seed matters
    seq = [scheduled_entry(11, it, ratios) for it in range(50)]
    assert seq == [scheduled_entry(11, it, ratios) for it in range(50)]
    assert seq != [scheduled_entry(12, it, ratios) for it in range(50)]
    with pytest.raises(ValueError, match='not all 0'):
        normalise_ratios([0, 0])
    with pytest.raises(ValueError, match='finite'):
        normalise_ratios([0.5, float('nan')])


def test_unmixed_trains_scheduled_entry_and_balances(tmp_path):
    runner, rec = _runner(tmp_path)
    runner.train()
    loop = runner.train_loop
    assert isinstance(loop, MultiTaskLoop) and len(rec.rows) == 12
    names = [e.name for e in loop.entries]
    ratios = [e.sampling_ratio for e in loop.entries]
    assert names == ['cls_a', 'cls_b', 'ret'] and sum(ratios) == 1
    by_name = {e.name: e for e in loop.entries}
    for row in rec.rows:
        expected = names[scheduled_entry(7, row['iter'], ratios)]
        assert row['task'] == expected  # runner seed 7 is the schedule seed
        entry = by_name[expected]
        assert row['set_task'] == (entry.sampling_ratio, entry.loss_weight)
        assert list(row['samples']) == ['_']
        assert len(row['samples']['_']) == \
            entry.dataloader.batch_size
    assert len({r['task'] for r in rec.rows}) >= 2
    # the checkpoint records every entry's meta information and task
    ckpt = torch.load(osp.join(str(tmp_path), 'iter_12.pth'),
                      weights_only=False)
    assert ckpt['meta']['dataset_meta']['ret']['task'] == 'retrieval'
    # lr_mult from paramwise_cfg reached MTAdamW's groups
    lrs = {g['lr'] for g in runner.optim_wrapper.optimizer.param_groups}
    assert len(lrs) == 2


@pytest.mark.parametrize('sampling', ['unmixed', 'mixed'])
def test_resume_continues_schedule_and_loader_positions(tmp_path,
                                                        monkeypatch,
                                                        sampling):
    """A run resumed from iteration 6 trains the same entries on the same
    samples as the uninterrupted one, without loading the skipped ones
    again, and ends with its weights, bitwise."""
    no_val = dict(val_dataloader=None, val_cfg=None, val_evaluator=None)
    train_cfg = dict(sampling=sampling)
    full, rec_full = _runner(tmp_path / 'full', **no_val,
                             train_cfg=train_cfg)
    full.train()
    resumed, rec_resumed = _runner(
        tmp_path / 'resumed', resume=True,
        load_from=str(tmp_path / 'full' / 'iter_6.pth'), **no_val,
        train_cfg=train_cfg)
    loaded = []
    original = ToyTaskDataset.prepare_data
    monkeypatch.setattr(ToyTaskDataset, 'prepare_data',
                        lambda self, idx: loaded.append(idx) or original(
                            self, idx))
    resumed.train()
    after = [r for r in rec_full.rows if r['iter'] >= 6]
    assert [(r['iter'], r['task'], r['samples']) for r in rec_resumed.rows
            ] == [(r['iter'], r['task'], r['samples']) for r in after]
    # the skipped iterations were not loaded again
    assert len(loaded) == sum(
        len(v) for r in after for v in r['samples'].values())
    full_state = full.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, full_state[key]), key


@pytest.mark.parametrize('optimizer', ['MTAdamW', 'AdamW'])
def test_zero_loss_weight_freezes_the_model(tmp_path, optimizer):
    """w_k reaches the update: through set_task for MT-AdamW, through the
    loss for plain AdamW."""
    entries = dict(
        cls_a=dict(sampling_ratio=1.0, loss_weight=0.0,
                   dataloader=Config.fromfile(CONFIG).train_dataloader.cls_a
                   .dataloader))
    runner, _ = _runner(
        tmp_path, optim_wrapper=dict(
            optimizer=dict(type=optimizer, lr=0.1, weight_decay=0.0)),
        train_cfg=dict(max_iters=3))
    runner.cfg.train_dataloader = entries
    runner._train_dataloader = copy.deepcopy(entries)
    before = copy.deepcopy(runner.model.state_dict())
    runner.train()
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, before[key]), key


NO_VAL = dict(val_dataloader=None, val_cfg=None, val_evaluator=None)


def _by_entry(row):
    """The samples of a recorded iteration keyed by entry (a mixed
    iteration of one entry hands the hooks its batch itself)."""
    if list(row['samples']) == ['_']:
        return {row['task']: row['samples']['_']}
    return row['samples']


def _record_set_task(monkeypatch):
    from mmupv2.engine.optimizers import MTAdamW
    calls = []
    set_task = MTAdamW.set_task

    def record(self, *args, **kwargs):
        set_task(self, *args, **kwargs)
        calls.append((self.sampling_ratio, self.scale, self.final))

    monkeypatch.setattr(MTAdamW, 'set_task', record)
    return calls


def test_mixed_sampling_shares_one_batch(tmp_path, monkeypatch):
    """Each iteration is one batch of sum_k s_k b_k = 3.6 -> 4 samples per
    rank (the expected batch of an unmixed iteration) shared by the
    entries as MixedSchedule says; MT-AdamW gets one part per entry present
    (s = lambda_k / n_k, w_k, final on the last) and updates once."""
    calls = _record_set_task(monkeypatch)
    runner, rec = _runner(
        tmp_path, train_cfg=dict(sampling='mixed', max_iters=12), **NO_VAL)
    runner.train()
    loaders = runner.train_loop.dataloader
    assert loaders.mixed_batch_size == 4
    names = [e.name for e in runner.train_loop.entries]
    by_name = {e.name: e for e in runner.train_loop.entries}
    schedule = MixedSchedule(mixed_shares([0.5, 0.2, 0.3], [4, 2, 4]), 4,
                             seed=7)
    expected = dict(zip(names, schedule.expected))
    assert len(rec.rows) == 12
    parts = iter(calls)
    for i, row in enumerate(rec.rows):
        counts = dict(zip(names, schedule.counts(row['iter'])))
        present = [n for n in names if counts[n]]
        assert row['task'] == ','.join(present)
        samples = _by_entry(row)
        assert {n: len(v) for n, v in samples.items()} == {
            n: counts[n] for n in present}
        assert sum(len(v) for v in samples.values()) == 4
        for j, name in enumerate(present):
            assert next(parts) == (expected[name] / counts[name],
                                   by_name[name].loss_weight,
                                   j == len(present) - 1)
        assert row['inner'] == i + 1  # one optimiser update per iteration
    assert next(parts, None) is None
    assert {n for r in rec.rows for n in _by_entry(r)} == set(names)
    assert all(g['step'] == 12
               for g in runner.optim_wrapper.optimizer.param_groups)
    # over the run every entry drew its s_k share of the batch capacity
    drawn = {n: sum(len(_by_entry(r).get(n, [])) for r in rec.rows)
             for n in names}
    assert drawn == dict(zip(names, schedule.counts_before(12)))


def test_mixed_and_unmixed_have_the_same_batch_per_step(tmp_path):
    """Entries of equal batch size: an unmixed and a mixed iteration both
    hold b = 4 samples per rank, every iteration. Unequal sizes: a mixed
    iteration holds the mean of the unmixed ones (sum_k s_k b_k = 3.6,
    rounded), and a mixed_batch_size set in train_cfg is kept exactly."""
    equal = {f'train_dataloader.{n}.dataloader.batch_size': 4
             for n in ('cls_a', 'cls_b', 'ret')}
    unmixed, rec_u = _runner(tmp_path / 'u', **equal, **NO_VAL)
    unmixed.train()
    mixed, rec_m = _runner(tmp_path / 'm', **equal, **NO_VAL,
                           train_cfg=dict(sampling='mixed'))
    mixed.train()
    assert [sum(len(v) for v in r['samples'].values()) for r in rec_u.rows
            ] == [4] * 12
    assert [sum(len(v) for v in r['samples'].values()) for r in rec_m.rows
            ] == [4] * 12
    assert len({r['task'] for r in rec_m.rows}) > 1

    ratios = normalise_ratios([0.5, 0.2, 0.3])
    sizes = [4, 2, 4]
    n = 4000
    unmixed_sizes = np.array(
        [sizes[scheduled_entry(7, it, ratios)] for it in range(n)])
    mean = float(np.dot(ratios, sizes))
    sigma = math.sqrt(float(np.dot(ratios, np.square(sizes))) - mean**2)
    assert abs(unmixed_sizes.mean() - mean) <= 3 * sigma / math.sqrt(n)
    assert default_mixed_batch_size(ratios, sizes) == round(mean) == 4

    custom, rec_c = _runner(
        tmp_path / 'c', **NO_VAL,
        train_cfg=dict(sampling='mixed', max_iters=5, mixed_batch_size=10))
    custom.train()
    assert [sum(len(v) for v in _by_entry(r).values()) for r in rec_c.rows
            ] == [10] * 5


def test_mixed_sampling_with_mt_adamw_steps_each_part(tmp_path,
                                                      monkeypatch):
    """Every part of a mixed update steps MT-AdamW on that entry's own
    gradient: the retrieval head has a gradient in the ret part only, the
    classification head in the cls parts only, the trunk in every one."""
    from mmupv2.engine.optimizers import MTAdamW
    seen = []
    step = MTAdamW.step

    def record(self, closure=None):
        names = {id(p): n for n, p in runner.model.named_parameters()}
        with_grad = {
            names[id(p)]
            for group in self.param_groups for p in group['params']
            if p.grad is not None and bool(p.grad.abs().sum() > 0)
        }
        seen.append((runner.message_hub.get_info('train_task'), with_grad,
                     self.final))
        return step(self, closure)

    monkeypatch.setattr(MTAdamW, 'step', record)
    runner, rec = _runner(
        tmp_path, train_cfg=dict(sampling='mixed', max_iters=4), **NO_VAL)
    runner.train()
    head = {'cls_a': 'heads.classification.weight',
            'cls_b': 'heads.classification.weight',
            'ret': 'heads.retrieval.weight'}
    parts = iter(seen)
    for row in rec.rows:
        present = row['task'].split(',')
        for j, name in enumerate(present):
            task, with_grad, final = next(parts)
            assert task == row['task']
            assert final == (j == len(present) - 1)
            assert {'trunk.0.weight', head[name]} <= with_grad
            other = ({'heads.retrieval.weight'} if name != 'ret' else
                     {'heads.classification.weight'})
            assert not other & with_grad, (name, with_grad)
    assert next(parts, None) is None


def test_mixed_sampling_with_adamw_steps_on_eq7(tmp_path, monkeypatch):
    """With a plain optimizer a mixed iteration is one update on Eq. 7's
    estimate sum_k (n_k / lambda_k) s_k w_k L_k: the gradient AdamW steps
    with equals that loss's gradient, recomputed by hand on the recorded
    batches with the initial weights."""
    runner, rec = _runner(
        tmp_path, train_cfg=dict(sampling='mixed', max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.1)), **NO_VAL)
    initial = copy.deepcopy(runner.model)
    batches, grads = {}, {}

    class Batches(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if 'data_samples' in data_batch:  # one entry in the iteration
                data_batch = {runner.message_hub.get_info('train_task'):
                              data_batch}
            batches.update(copy.deepcopy(data_batch))

    runner.register_hook(Batches())
    step = torch.optim.AdamW.step

    def record(self, closure=None):
        for name, p in runner.model.named_parameters():
            if p.grad is not None:
                grads[name] = p.grad.clone()
        return step(self, closure)

    monkeypatch.setattr(torch.optim.AdamW, 'step', record)
    runner.train()
    assert grads and batches
    loop = runner.train_loop
    by_name = {e.name: e for e in loop.entries}
    schedule = loop.dataloader.mixed_schedule(7)
    counts = dict(zip([e.name for e in loop.entries], schedule.counts(0)))
    expected = dict(zip([e.name for e in loop.entries], schedule.expected))
    total = 0
    for name, batch in batches.items():
        data = initial.data_preprocessor(batch, True)
        loss, _ = initial.parse_losses(initial(**data, mode='loss'))
        entry = by_name[name]
        total = total + counts[name] / expected[name] * \
            entry.sampling_ratio * entry.loss_weight * loss
    assert set(batches) == {n for n in counts if counts[n]}
    total.backward()
    for name, p in initial.named_parameters():
        if p.grad is None:
            assert name not in grads or not grads[name].any()
            continue
        torch.testing.assert_close(grads[name], p.grad, atol=1e-6, rtol=0)


def test_mixed_sampling_errors_name_the_setting(tmp_path):
    with pytest.raises(ValueError, match="mixed_batch_size=8 needs "
                       "sampling='mixed'"):
        _runner(tmp_path, train_cfg=dict(mixed_batch_size=8))[0].train()
    runner, _ = _runner(tmp_path, train_cfg=dict(sampling='mixed'))
    runner._train_dataloader['ret']['dataloader']['batch_sampler'] = dict(
        type='mmdet.AspectRatioBatchSampler')
    with pytest.raises(ValueError,
                       match=r"\['ret'\].dataloader.batch_sampler"):
        runner.train()
    runner, _ = _runner(tmp_path, train_cfg=dict(sampling='mixed'),
                        optim_wrapper=dict(accumulative_counts=2))
    with pytest.raises(ValueError, match='accumulative_counts=2'):
        runner.train()


def test_bad_configs(tmp_path):
    with pytest.raises(ValueError, match='sampling must be one of'):
        _runner(tmp_path, train_cfg=dict(sampling='random'))[0].train()
    cfg = Config.fromfile(CONFIG)
    bad_entries = [
        ({'x': dict(sampling_ratio=1)}, "needs a 'dataloader'"),
        ({'x': dict(dataloader=cfg.train_dataloader.ret.dataloader,
                    ratio=1)}, 'unknown keys'),
        ({'x': dict(dataloader=cfg.train_dataloader.ret.dataloader,
                    sampling_ratio=0)}, 'not all 0'),
        # nan used to train one task silently (with AdamW: no set_task)
        ({'x': dict(dataloader=cfg.train_dataloader.ret.dataloader,
                    sampling_ratio=float('nan'))},
         r"train_dataloader\['x'\].sampling_ratio=nan: .* finite number"),
    ]
    for entries, match in bad_entries:
        runner, _ = _runner(tmp_path)
        runner._train_dataloader = entries
        with pytest.raises((KeyError, ValueError), match=match):
            runner.train()
