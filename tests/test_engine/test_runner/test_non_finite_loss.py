# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A NaN / inf loss never reaches the weights (MultiTaskLoop's
``non_finite_loss``), and a checkpoint with non-finite weights is never
written (FiniteCheckpointHook)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmupv2.engine.hooks import NonFiniteWeightsError
from mmupv2.engine.runner import NonFiniteLossError, scheduled_entry

from ...logs import recorded_warnings

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')
NO_VAL = dict(val_cfg=None, val_dataloader=None, val_evaluator=None)


class Weights(Hook):
    """The trunk's weight after every iteration, and the log variables."""
    priority = 'LOWEST'

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.rows.append(
            dict(task=runner.message_hub.get_info('train_task'),
                 weight=runner.model.trunk[0].weight.detach().clone(),
                 outputs=outputs))


def _runner(tmp_path, nan_task='retrieval', nan_from=0, **overrides):
    """The toy run, the loss of ``nan_task``'s entries (``'*'``: every
    entry's) NaN from iteration ``nan_from`` on."""
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.merge_from_dict(dict(NO_VAL, **overrides))
    runner = Runner.from_cfg(cfg)
    forward = runner.model.forward

    def poisoned(inputs, data_samples=None, mode='tensor'):
        out = forward(inputs, data_samples, mode)
        if mode == 'loss' and runner.iter >= nan_from:
            out = {k: v * float('nan') if nan_task == '*'
                   or k.startswith(f'{nan_task}.') else v
                   for k, v in out.items()}
        return out

    runner.model.forward = poisoned
    weights = Weights()
    runner.register_hook(weights)
    return runner, weights


def test_nan_entry_is_skipped_and_counted(tmp_path):
    """Default ``non_finite_loss='skip'``: the iterations of the NaN entry
    ('ret', task retrieval) leave the weights and MT-AdamW's step count as
    they were; the others train; each skip is counted and named."""
    runner, weights = _runner(tmp_path)
    with recorded_warnings(runner.logger) as messages:
        runner.train()
    entries = [scheduled_entry(runner.seed, t, [0.5, 0.2, 0.3])
               for t in range(12)]
    skipped = [t for t, k in enumerate(entries) if k == 2]
    assert skipped and len(skipped) < 12
    previous = runner.model.trunk[0].weight.new_full((16, 8), float('nan'))
    for t, row in enumerate(weights.rows):
        assert (row['task'] == 'ret') == (t in skipped)
        if t in skipped:
            assert torch.equal(row['weight'], previous)
        elif t > 0:
            assert not torch.equal(row['weight'], previous)
        previous = row['weight']
    assert torch.isfinite(runner.model.trunk[0].weight).all()
    assert runner.message_hub.get_info('non_finite_skips') == len(skipped)
    step = runner.optim_wrapper.optimizer.param_groups[0]['step']
    assert step == 12 - len(skipped)
    named = [m for m in messages if 'non-finite loss' in m]
    assert len(named) == len(skipped)
    assert f'iteration {skipped[0] + 1}:' in named[0]
    assert "'ret' (task retrieval)" in named[0]
    assert 'retrieval.loss_cls=nan' in named[0]
    # the checkpoints (iterations 6 and 12) are written, and finite
    assert osp.isfile(osp.join(tmp_path, 'iter_12.pth'))


def test_raise_names_iteration_entry_and_terms(tmp_path):
    runner, _ = _runner(tmp_path, nan_task='classification', nan_from=3,
                        train_cfg=dict(non_finite_loss='raise'))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    # the first iteration from 3 on that trains cls_a or cls_b
    first = next(t for t in range(3, 12) if scheduled_entry(
        runner.seed, t, [0.5, 0.2, 0.3]) in (0, 1))
    message = str(info.value)
    assert f'iteration {first + 1}:' in message
    assert 'classification.loss_cls=nan' in message
    assert '(task classification)' in message
    assert runner.iter == first
    assert not any(osp.exists(osp.join(tmp_path, f'iter_{t}.pth'))
                   for t in range(first + 1, 13))


def test_too_many_skips_in_a_row_stop(tmp_path):
    runner, _ = _runner(tmp_path, nan_task='*', train_cfg=dict(
        max_consecutive_skips=3))
    with pytest.raises(NonFiniteLossError, match='3 iterations in a row'):
        runner.train()
    assert runner.iter == 2


@pytest.mark.parametrize('optimizer', ['MTAdamW', 'AdamW'])
def test_mixed_sampling_keeps_weights_finite(tmp_path, optimizer):
    """Mixed sampling: with MT-AdamW the NaN entry's part is dropped and
    the update completes with the others; with a plain optimizer (Eq. 7's
    single update) the iteration is skipped."""
    runner, weights = _runner(
        tmp_path, train_cfg=dict(sampling='mixed', max_iters=6),
        optim_wrapper=dict(optimizer=dict(type=optimizer, lr=0.01)))
    runner.train()
    assert torch.isfinite(runner.model.trunk[0].weight).all()
    with_ret = [r for r in weights.rows if 'ret' in r['task'].split(',')]
    assert with_ret
    assert runner.message_hub.get_info('non_finite_skips') == len(with_ret)


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    """Weights that went NaN (here set by hand after iteration 5) stop the
    run at the next save, before the file is written; the previous
    checkpoint stays the latest."""

    class Poison(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if batch_idx == 10:
                with torch.no_grad():
                    runner.model.trunk[0].weight[0, :3] = float('inf')

    runner, _ = _runner(tmp_path, nan_task='none')
    runner.register_hook(Poison(), priority='HIGHEST')
    with pytest.raises(NonFiniteWeightsError) as info:
        runner.train()
    assert 'iteration 12: 3 of' in str(info.value)
    assert 'trunk.0.weight (3)' in str(info.value)
    assert osp.isfile(osp.join(tmp_path, 'iter_6.pth'))
    assert not osp.exists(osp.join(tmp_path, 'iter_12.pth'))
    with open(osp.join(tmp_path, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_6.pth')


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="non_finite_loss must be one of"):
        _runner(tmp_path, train_cfg=dict(non_finite_loss='ignore'))[
            0].train()
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        _runner(tmp_path, train_cfg=dict(max_consecutive_skips=0))[
            0].train()
