# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmupv2.engine.runner import MultiTaskTestLoop, MultiTaskValLoop
from mmupv2.registry import LOOPS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask_eval.py')
PLAIN_CONFIG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')


class EvalRecorder(Hook):
    """Records every val / test hook call with what the Runner shows."""
    priority = 'LOWEST'

    def __init__(self):
        self.calls = []

    def _record(self, runner, name, **kwargs):
        stage = 'test' if 'test' in name else 'val'
        loop = runner.test_loop if stage == 'test' else runner.val_loop
        self.calls.append(
            dict(name=name, current=loop.current,
                 dataset=loop.dataloader.dataset.dataset_name,
                 length=len(loop.dataloader), **kwargs))

    def before_val(self, runner):
        self._record(runner, 'before_val')

    def before_val_epoch(self, runner):
        self._record(runner, 'before_val_epoch')

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self._record(runner, 'before_val_iter', batch_idx=batch_idx,
                     batch_sets={s.dataset_name
                                 for s in data_batch['data_samples']})

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        self._record(runner, 'after_val_iter', batch_idx=batch_idx,
                     n_outputs=len(outputs))

    def after_val_epoch(self, runner, metrics=None):
        self._record(runner, 'after_val_epoch', metrics=dict(metrics))

    def after_val(self, runner):
        self._record(runner, 'after_val')

    def before_test(self, runner):
        self._record(runner, 'before_test')

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self._record(runner, 'before_test_iter', batch_idx=batch_idx)

    def after_test_epoch(self, runner, metrics=None):
        self._record(runner, 'after_test_epoch', metrics=dict(metrics))

    def after_test(self, runner):
        self._record(runner, 'after_test')


def _runner(tmp_path, config=CONFIG, **overrides):
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path)
    cfg.merge_from_dict(overrides)
    runner = Runner.from_cfg(cfg)
    recorder = EvalRecorder()
    runner.register_hook(recorder)
    return runner, recorder


def _expected_accuracy(runner, loader, topk=1):
    """Top-k accuracy (%) of the runner's model on ``loader``, computed
    without any evaluator."""
    model = runner.model
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            logits = model(**data, mode='tensor')  # (B, num_classes)
            labels = torch.cat([s.gt_label for s in batch['data_samples']])
            top = logits.topk(topk, dim=1).indices  # (B, k)
            hits += int((top == labels[:, None]).any(1).sum())
            total += len(labels)
    return 100.0 * hits / total


def test_registered():
    assert LOOPS.get('MultiTaskValLoop') is MultiTaskValLoop
    assert LOOPS.get('MultiTaskTestLoop') is MultiTaskTestLoop


def test_val_runs_every_dataset_with_its_evaluator(tmp_path):
    runner, recorder = _runner(tmp_path)
    metrics = runner.val()
    loop = runner.val_loop
    assert isinstance(loop, MultiTaskValLoop)

    # every key prefixed with its data set, every evaluator's metric present
    assert set(metrics) == {
        'cls_a/accuracy/top1', 'ret/accuracy/top1', 'ret/accuracy/top2',
        'ret/single-label/precision'
    }
    # each data set was evaluated on its own samples only
    for name, topk in (('cls_a', 1), ('ret', 1), ('ret', 2)):
        expected = _expected_accuracy(runner, loop.dataloaders[name], topk)
        assert metrics[f'{name}/accuracy/top{topk}'] == pytest.approx(
            expected, abs=1e-4), name

    # hooks: once per run around, per batch of every data set in between
    names = [c['name'] for c in recorder.calls]
    assert names[:2] == ['before_val', 'before_val_epoch']
    assert names[-2:] == ['after_val_epoch', 'after_val']
    iters = [c for c in recorder.calls if c['name'] == 'before_val_iter']
    # 24 samples per data set, batch size 8
    assert [(c['current'], c['batch_idx']) for c in iters] == [
        ('cls_a', 0), ('cls_a', 1), ('cls_a', 2), ('ret', 0), ('ret', 1),
        ('ret', 2)
    ]
    for c in iters:
        # the Runner's val_dataloader is the data set being run
        assert c['dataset'] == c['current']
        assert c['batch_sets'] == {c['current']}
    assert all(c['n_outputs'] == 8 for c in recorder.calls
               if c['name'] == 'after_val_iter')
    assert recorder.calls[-2]['metrics'] == metrics

    # after the run the Runner sees the first data set again
    assert loop.current == 'cls_a'
    assert runner.val_dataloader is loop.dataloaders['cls_a']
    assert runner.val_evaluator is loop.evaluators['cls_a']
    # metrics reach the message hub (and the log) with their prefix
    assert runner.message_hub.get_scalar(
        'val/ret/accuracy/top2').current() == pytest.approx(
            metrics['ret/accuracy/top2'])


def test_evaluators_get_dataset_meta_and_tasks(tmp_path):
    runner, _ = _runner(tmp_path)
    loop = runner.val_loop
    assert loop.tasks == {'cls_a': 'classification', 'ret': 'retrieval'}
    assert list(loop.dataloaders) == ['cls_a', 'ret']
    assert loop.evaluators['cls_a'].dataset_meta['classes'] == (
        'class_0', 'class_1', 'class_2')
    assert loop.evaluators['ret'].dataset_meta['classes'] == (
        'class_0', 'class_1', 'class_2', 'class_3')
    # every metric of an evaluator shares its dataset_meta
    for metric in loop.evaluators['ret'].metrics:
        assert len(metric.dataset_meta['classes']) == 4
    assert len(loop.evaluators['ret'].metrics) == 2


def test_test_loop_and_validation_during_training(tmp_path):
    runner, recorder = _runner(tmp_path, train_cfg=dict(max_iters=4,
                                                        val_interval=2))
    runner.train()
    names = [c['name'] for c in recorder.calls]
    # validation ran at iterations 2 and 4, each over both data sets
    assert names.count('before_val') == 2
    assert names.count('before_val_iter') == 2 * 6
    trained = recorder.calls[-2]['metrics']
    assert set(trained) == {
        'cls_a/accuracy/top1', 'ret/accuracy/top1', 'ret/accuracy/top2',
        'ret/single-label/precision'
    }

    metrics = runner.test()
    assert isinstance(runner.test_loop, MultiTaskTestLoop)
    assert metrics == pytest.approx(trained)
    test_calls = [c for c in recorder.calls if 'test' in c['name']]
    assert test_calls[0]['name'] == 'before_test'
    assert test_calls[-1]['name'] == 'after_test'
    assert [(c['current'], c['batch_idx']) for c in test_calls
            if c['name'] == 'before_test_iter'] == [
                ('cls_a', 0), ('cls_a', 1), ('cls_a', 2), ('ret', 0),
                ('ret', 1), ('ret', 2)
            ]
    assert runner.test_loop.tasks == {
        'cls_a': 'classification',
        'ret': 'retrieval'
    }


def test_config_errors_are_clear(tmp_path):
    runner, _ = _runner(tmp_path)
    cfg = Config.fromfile(CONFIG)
    loaders = copy.deepcopy(cfg.val_dataloader.to_dict())
    loaders.pop('_delete_', None)
    evaluators = copy.deepcopy(cfg.val_evaluator.to_dict())
    evaluators.pop('_delete_', None)

    plain = Config.fromfile(PLAIN_CONFIG)
    with pytest.raises(TypeError, match=r"val_cfg = dict\(type='ValLoop'\)"):
        MultiTaskValLoop(runner, plain.val_dataloader, evaluators)
    with pytest.raises(TypeError,
                       match=r"test_cfg = dict\(type='TestLoop'\)"):
        MultiTaskTestLoop(runner, plain.test_dataloader, evaluators)
    with pytest.raises(TypeError, match='val_evaluator must be a dict'):
        MultiTaskValLoop(runner, loaders, plain.val_evaluator)
    with pytest.raises(KeyError, match=r"missing in val_evaluator: \['ret'\]"):
        MultiTaskValLoop(runner, loaders, dict(cls_a=evaluators['cls_a']))
    with pytest.raises(KeyError, match=r"unknown in test_evaluator: \['x'\]"):
        MultiTaskTestLoop(runner, loaders, dict(evaluators, x=[]))
    with pytest.raises(TypeError, match=r"val_dataloader\['ret'\]"):
        MultiTaskValLoop(runner, dict(loaders, ret=dict(batch_size=2)),
                         evaluators)
    with pytest.raises(TypeError, match='non-empty dict'):
        MultiTaskValLoop(runner, {}, evaluators)
