# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""tools/train.py, tools/test.py and tools/dist_train.sh, run as a user
would: in subprocesses, on the toy multi-task configs."""
import importlib.util
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmupv2.testing import ToyMultiTaskModel, ToyTaskDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
CONFIGS = osp.join(ROOT, 'tests', 'data', 'configs')
EVAL_CONFIG = osp.join(CONFIGS, 'toy_multitask_eval.py')
DIST_CONFIG = osp.join(CONFIGS, 'toy_multitask_dist.py')
TIMEOUT = 240


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(
        f'mmupv2_tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(**extra) -> dict:
    env = dict(os.environ)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    env['PYTHON'] = sys.executable
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.update(extra)
    return env


def _run(cmd, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=ROOT, env=_env(**env), capture_output=True, text=True,
        timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-3000:]}')
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _table_rows(text: str):
    """The rows of the test summary table in ``text``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if re.fullmatch(r'\|\s*task\s*\|\s*data set\s*\|\s*metric'
                                 r'\s*\|\s*value\s*\|', line.strip()))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip().strip('|').split('|')])
    return rows


def _accuracy(ckpt_path, task, num_classes, seed, name):
    """Top-1 accuracy (%) of a checkpoint on a toy val set, by hand."""
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    model = ToyMultiTaskModel(tasks=dict(classification=3, retrieval=4))
    model.load_state_dict(ckpt['state_dict'])
    dataset = ToyTaskDataset(num_samples=24, num_classes=num_classes,
                             seed=seed, task=task, dataset_name=name)
    items = [dataset[i] for i in range(len(dataset))]
    inputs = torch.stack([it['inputs'] for it in items])  # (24, 8)
    samples = [it['data_samples'] for it in items]
    with torch.no_grad():
        logits = model(inputs, samples, mode='tensor')  # (24, num_classes)
    labels = torch.cat([s.gt_label for s in samples])
    return 100.0 * float((logits.argmax(1) == labels).float().mean())


def test_train_merge_args():
    train = _load_tool('train')
    cfg = Config.fromfile(EVAL_CONFIG)
    args = train.parse_args([EVAL_CONFIG, '--amp', '--resume',
                             '--cfg-options', 'train_cfg.max_iters=3'])
    train.merge_args(cfg, args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.optimizer.type == 'MTAdamW'
    assert (cfg.resume, cfg.load_from) == (True, None)
    assert cfg.train_cfg.max_iters == 3
    assert cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', 'toy_multitask_eval')

    cfg = Config.fromfile(EVAL_CONFIG)
    args = train.parse_args([EVAL_CONFIG, '--resume', 'a/iter_2.pth',
                             '--work-dir', 'w', '--launcher', 'pytorch'])
    train.merge_args(cfg, args)
    assert (cfg.resume, cfg.load_from) == (True, 'a/iter_2.pth')
    assert (cfg.work_dir, cfg.launcher) == ('w', 'pytorch')
    assert cfg.optim_wrapper.type == 'OptimWrapper'

    cfg = Config.fromfile(EVAL_CONFIG)
    cfg.optim_wrapper.type = 'DeepSpeedOptimWrapper'
    with pytest.raises(ValueError, match='strategy.bf16'):
        train.merge_args(cfg, train.parse_args([EVAL_CONFIG, '--amp']))


def test_train_resume_then_test_every_dataset(tmp_path):
    work = tmp_path / 'work'
    train = [sys.executable, osp.join(TOOLS, 'train.py'), EVAL_CONFIG,
             '--work-dir', str(work), '--cfg-options']
    _run(train + ['train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                  'default_hooks.checkpoint.interval=2'])
    assert (work / 'iter_2.pth').is_file() and (work / 'iter_4.pth').is_file()

    # --resume (auto): continues from iter 4 of the work dir
    proc = _run(train[:-1] + ['--resume', '--cfg-options',
                              'train_cfg.max_iters=6',
                              'train_cfg.val_interval=6',
                              'default_hooks.checkpoint.interval=2'])
    log = proc.stdout + proc.stderr
    assert re.search(r'Auto resumed from the latest checkpoint \S*iter_4\.pth',
                     log), log[-2000:]
    assert re.search(r'Iter\(train\) \[5/6\]', log)
    assert not re.search(r'Iter\(train\) \[[1-4]/6\]', log)
    # validation over both data sets, metrics prefixed with the data set
    assert re.search(r'Iter\(val\).*cls_a/accuracy/top1: .*'
                     r'ret/single-label/precision: ', log)
    ckpt = work / 'iter_6.pth'
    assert ckpt.is_file()

    out = tmp_path / 'metrics.json'
    proc = _run([
        sys.executable, osp.join(TOOLS, 'test.py'), EVAL_CONFIG, str(ckpt),
        '--work-dir', str(tmp_path / 'test'), '--out-metrics', str(out)
    ])
    doc = json.loads(out.read_text())
    assert doc['checkpoint'] == str(ckpt)
    results = doc['results']
    assert [(r['task'], r['dataset'], r['metric']) for r in results] == [
        ('classification', 'cls_a', 'accuracy/top1'),
        ('retrieval', 'ret', 'accuracy/top1'),
        ('retrieval', 'ret', 'accuracy/top2'),
        ('retrieval', 'ret', 'single-label/precision'),
    ]
    # the numbers are the checkpoint's, data set by data set
    values = {(r['dataset'], r['metric']): r['value'] for r in results}
    assert values[('cls_a', 'accuracy/top1')] == pytest.approx(
        _accuracy(ckpt, 'classification', 3, 0, 'cls_a'), abs=1e-3)
    assert values[('ret', 'accuracy/top1')] == pytest.approx(
        _accuracy(ckpt, 'retrieval', 4, 2, 'ret'), abs=1e-3)

    # ONE table with the same rows, printed once
    printed = proc.stdout + proc.stderr
    assert len(re.findall(r'\|\s*task\s*\|\s*data set\s*\|', printed)) == 1
    rows = _table_rows(printed)
    assert rows == [[r['task'], r['dataset'], r['metric'],
                     f"{r['value']:.4f}"] for r in results]


def test_dist_train_and_test_two_cpu_processes(tmp_path):
    """tools/dist_train.sh: 2 processes, gloo; every iteration trains the
    same entry on both ranks. tools/dist_test.sh: the 2 ranks' shares of
    every data set give the metrics of the whole data set."""
    work = tmp_path / 'dist'
    proc = _run([
        'bash', osp.join(TOOLS, 'dist_train.sh'), DIST_CONFIG, '2',
        '--work-dir', str(work), '--cfg-options', 'train_cfg.max_iters=4',
        'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4'
    ], PORT=str(_free_port()))
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log
    assert "'backend': 'gloo'" in log
    assert (work / 'iter_4.pth').is_file()
    # every rank's random generators, for a bitwise resume
    saved = torch.load(work / 'iter_4.pth', weights_only=False)
    assert len(saved['random_state']['ranks']) == 2

    # rank 0's log line of every iteration names its entry
    logged = re.findall(r'Iter\(train\) \[(\d)/4\].*task: (\w+)', log)
    assert [int(i) for i, _ in logged] == [1, 2, 3, 4]
    rank_rows = []
    for rank in (0, 1):
        path = work / 'rank_tasks' / f'rank{rank}.txt'
        rank_rows.append([line.split() for line in
                          path.read_text().splitlines()])
    assert [r[0] for r in rank_rows[0]] == ['0', '1', '2', '3']
    assert rank_rows[0] == rank_rows[1]
    assert [r[1] for r in rank_rows[0]] == [t for _, t in logged]
    # the batch's samples are of the entry's task
    tasks = dict(cls_a='classification', cls_b='classification',
                 ret='retrieval')
    assert all(tasks[entry] == task for _, entry, task in rank_rows[1])

    ckpt = work / 'iter_4.pth'
    out = tmp_path / 'dist_metrics.json'
    proc = _run([
        'bash', osp.join(TOOLS, 'dist_test.sh'), EVAL_CONFIG, str(ckpt), '2',
        '--work-dir', str(tmp_path / 'dist_test'), '--out-metrics', str(out)
    ], PORT=str(_free_port()))
    printed = proc.stdout + proc.stderr
    assert len(re.findall(r'\|\s*task\s*\|\s*data set\s*\|', printed)) == 1
    values = {(r['dataset'], r['metric']): r['value']
              for r in json.loads(out.read_text())['results']}
    assert len(values) == 4
    assert values[('cls_a', 'accuracy/top1')] == pytest.approx(
        _accuracy(ckpt, 'classification', 3, 0, 'cls_a'), abs=1e-3)
    assert values[('ret', 'accuracy/top1')] == pytest.approx(
        _accuracy(ckpt, 'retrieval', 4, 2, 'ret'), abs=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_train_amp_on_gpu(tmp_path):
    """--amp trains with AmpOptimWrapper (GPU only: mmengine refuses AMP
    without CUDA)."""
    proc = _run([
        sys.executable, osp.join(TOOLS, 'train.py'), EVAL_CONFIG, '--amp',
        '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2'
    ])
    assert (tmp_path / 'iter_2.pth').is_file()
    assert 'AmpOptimWrapper' in (proc.stdout + proc.stderr)
