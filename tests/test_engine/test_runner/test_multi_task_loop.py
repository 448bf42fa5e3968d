# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import copy
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmupv2.engine.runner import (
    MultiTaskLoop,
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


def test_resume_continues_schedule_and_loader_positions(tmp_path,
                                                        monkeypatch):
    no_val = dict(val_dataloader=None, val_cfg=None, val_evaluator=None)
    full, rec_full = _runner(tmp_path / 'full', **no_val)
    full.train()
    resumed, rec_resumed = _runner(
        tmp_path / 'resumed', resume=True,
        load_from=str(tmp_path / 'full' / 'iter_6.pth'), **no_val)
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
    assert len(loaded) == sum(len(r['samples']['_']) for r in after)


def test_mixed_sampling_uses_every_entry(tmp_path):
    runner, rec = _runner(
        tmp_path, train_cfg=dict(sampling='mixed', max_iters=3))
    runner.train()
    for i, row in enumerate(rec.rows):
        assert row['task'] == 'cls_a,cls_b,ret'
        assert sorted(row['samples']) == ['cls_a', 'cls_b', 'ret']
        assert row['set_task'] == (1.0, 1.0)
        assert row['inner'] == i + 1  # one optimiser step per iteration


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


def _first_mixed_step_grads(tmp_path, monkeypatch, loss_weights):
    """The gradients MT-AdamW steps with in the first iteration of mixed
    sampling over the entries cls_a and ret with these ``w_k``."""
    from mmupv2.engine.optimizers import MTAdamW
    loaders = Config.fromfile(CONFIG).train_dataloader
    entries = {
        name: dict(sampling_ratio=0.5, loss_weight=weight,
                   dataloader=loaders[name].dataloader)
        for name, weight in zip(('cls_a', 'ret'), loss_weights)
    }
    runner, _ = _runner(
        tmp_path, train_cfg=dict(sampling='mixed', max_iters=1),
        val_dataloader=None, val_cfg=None, val_evaluator=None)
    runner.cfg.train_dataloader = entries
    runner._train_dataloader = copy.deepcopy(entries)
    grads = {}
    step = MTAdamW.step

    def record(self, closure=None):
        names = {id(p): n for n, p in runner.model.named_parameters()}
        assert (self.sampling_ratio, self.scale) == (1.0, 1.0)
        grads.update({
            names[id(p)]: p.grad.clone()
            for group in self.param_groups for p in group['params']
            if p.grad is not None
        })
        return step(self, closure)

    with monkeypatch.context() as patch:
        patch.setattr(MTAdamW, 'step', record)
        runner.train()
    return grads


def test_mixed_sampling_weights_each_entry_with_mt_adamw(tmp_path,
                                                         monkeypatch):
    """Mixed sampling with MT-AdamW: the optimizer is told s_k = w_k = 1
    and each entry's loss is multiplied by its w_k before the backward.
    Only the ret entry reaches the retrieval head, so its gradient triples
    with w_ret = 3; the classification head's does not change; the shared
    trunk gets the weighted sum."""
    base = _first_mixed_step_grads(tmp_path / 'a', monkeypatch, (1.0, 1.0))
    cls_only = _first_mixed_step_grads(tmp_path / 'b', monkeypatch,
                                       (1.0, 0.0))
    weighted = _first_mixed_step_grads(tmp_path / 'c', monkeypatch,
                                       (1.0, 3.0))
    head = 'heads.retrieval.weight'
    assert bool(base[head].abs().sum() > 0)
    torch.testing.assert_close(weighted[head], 3 * base[head])
    assert bool((cls_only[head] == 0).all())
    torch.testing.assert_close(weighted['heads.classification.weight'],
                               base['heads.classification.weight'])
    trunk = 'trunk.0.weight'
    ret_part = base[trunk] - cls_only[trunk]
    torch.testing.assert_close(weighted[trunk],
                               cls_only[trunk] + 3 * ret_part)


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
