# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The generalist tax: ``mmupv2.engine.runner.entry_runs`` and
``tools/analysis_tools/single_task_baselines.py`` on the tiny config."""
import json

import pytest
from mmengine.config import Config

from mmupv2.engine.runner import scheduled_entry
from mmupv2.engine.runner.entry_runs import (
    cut_schedule,
    entries_config,
    entry_iterations,
    paper_scale,
)

from .tool_helpers import TINY_CONFIG, load_tool, run_tool

TOOL = 'analysis_tools/single_task_baselines.py'
ENTRIES = ['classification', 'detection', 'instance_segmentation',
           'captioning', 'retrieval', 'mlm']


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def test_entry_iterations_are_the_loops_schedule():
    cfg = Config.fromfile(TINY_CONFIG)
    cut_schedule(cfg, 200)
    iterations = entry_iterations(cfg)
    assert list(iterations) == ENTRIES
    ratios = [0.15, 0.15, 0.15, 0.25, 0.2, 0.1]  # the config's s_k
    drawn = [scheduled_entry(0, t, ratios) for t in range(200)]
    assert [drawn.count(k) for k in range(6)] == list(iterations.values())
    assert sum(iterations.values()) == 200
    # another seed, another schedule
    cfg.randomness.seed = 5
    assert entry_iterations(cfg) != iterations
    # mixed sampling: the batches of b_k that the entry's samples fill;
    # the default mixed batch rounds sum s_k b_k = 17.2 to 17 samples, so
    # s_k * 200 * 17 / 17.2 (captioning: 49.4)
    cfg.train_cfg.sampling = 'mixed'
    assert entry_iterations(cfg) == dict(zip(ENTRIES,
                                             [30, 30, 30, 49, 40, 20]))
    cfg.randomness.seed = None
    cfg.train_cfg.sampling = 'unmixed'
    with pytest.raises(ValueError, match='randomness.seed'):
        entry_iterations(cfg)


def test_entries_config_and_schedule_cut():
    cfg = Config.fromfile(TINY_CONFIG)
    run = entries_config(cfg, ['retrieval'], 30, '/tmp/w')
    assert list(run.train_dataloader) == ['retrieval']
    assert list(run.test_dataloader) == list(run.val_evaluator) == [
        'retrieval']
    assert run.train_cfg.max_iters == 30
    assert run.train_cfg.val_interval == run.train_cfg.val_begin == 31
    warmup, cosine = run.param_scheduler
    assert (warmup.begin, warmup.end, cosine.begin, cosine.end) == (0, 30,
                                                                    29, 30)
    assert cfg.train_cfg.max_iters == 1000  # the original is kept
    mlm = entries_config(cfg, ['mlm'], 3, '/tmp/w')  # nothing to evaluate
    assert mlm.val_dataloader is None and mlm.test_evaluator is None
    with pytest.raises(KeyError, match=r"\['nope'\]: not entries.*'mlm'"):
        entries_config(cfg, ['retrieval', 'nope'], 3, '/tmp/w')


def test_paper_scale():
    assert paper_scale({
        'detection/detection/bbox_mAP': 0.574,
        'detection/detection/bbox_mAP_50': 0.9,
        'classification/classification/top1': 93.0,
        'retrieval/retrieval/i2t_R@1': 55.0,
        'time': 1.0
    }) == {'detection': {'bbox_mAP': 57.4},
           'classification': {'top1': 93.0},
           'retrieval': {'i2t_R@1': 55.0}}


def test_clear_errors_for_bad_tasks(tool):
    cfg = Config.fromfile(TINY_CONFIG)
    assert tool.choose_tasks(cfg, None) == ENTRIES[:5]  # MLM has no metric
    with pytest.raises(KeyError, match=r"--tasks clasification: not an "
                       r"entry.*'classification'"):
        tool.choose_tasks(cfg, ['clasification'])
    with pytest.raises(KeyError, match='--tasks mlm: the entry has no '
                       'val_dataloader'):
        tool.choose_tasks(cfg, ['classification', 'mlm'])


def test_plan_runs(tool):
    runs = tool.plan_runs(['classification', 'mlm', 'retrieval'],
                          ['share', 'whole'],
                          dict(classification=3, mlm=0, retrieval=10), 10,
                          train_multi_task=True)
    assert [(r.name, r.entries, r.iterations) for r in runs] == [
        ('multi_task', ['classification', 'mlm', 'retrieval'], 10),
        ('classification_share', ['classification'], 3),
        ('classification_whole', ['classification'], 10),
        ('mlm_whole', ['mlm'], 10),  # no iteration of its own: no share
        ('retrieval_share', ['retrieval'], 10),  # its share is the whole
    ]


def test_time_left_uses_each_entrys_own_rate(tool):
    share = tool.PlannedRun('ret_share', ['ret'], 10)
    whole = tool.PlannedRun('ret_whole', ['ret'], 100)
    cls = tool.PlannedRun('cls_whole', ['cls'], 100)
    timer = tool.Timer()
    assert timer.left([whole]) == ''  # nothing measured yet
    timer.add(tool.PlannedRun('multi', ['cls', 'ret'], 100),
              dict(train_seconds=100.0, test_seconds=10.0))
    timer.add(share, dict(train_seconds=40.0, test_seconds=2.0))
    # ret: 4 s an iteration; cls: the mean, 140 s / 110 iterations; tests 6 s
    expected = (100 * 4 + 100 * 140 / 110 + 2 * 6) / 60
    assert timer.left([whole, cls]) == f', about {expected:.1f} min left'
    assert timer.left([]) == ''


def test_reads_every_multi_task_result(tool, tmp_path):
    demo = tmp_path / 'demo'
    demo.mkdir()
    (demo / 'metrics.json').write_text(json.dumps(
        {'classification': {'top1': 93.0},
         'captioning': {'BLEU-4': 30.4, 'CIDEr': 149.7}}))
    result, source = tool.read_multi_task(str(demo))
    assert source == str(demo / 'metrics.json')
    assert result == {'classification': {'top1': 93.0},
                      'captioning': {'BLEU-4': 30.4, 'CIDEr': 149.7}}
    # mmengine's test JSON in the run's log folder (raw values)
    run = tmp_path / 'run' / '20250101_000000'
    run.mkdir(parents=True)
    (run / '20250101_000000.json').write_text(json.dumps(
        {'detection/detection/bbox_mAP': 0.5, 'time': 0.1}))
    assert tool.read_multi_task(str(tmp_path / 'run'))[0] == {
        'detection': {'bbox_mAP': 50.0}}
    # tools/test.py --out-metrics
    out = tmp_path / 'test_out.json'
    out.write_text(json.dumps({'results': [
        {'task': 'retrieval', 'dataset': 'retrieval',
         'metric': 'retrieval/t2i_R@1', 'value': 45.2}]}))
    assert tool.read_multi_task(str(out))[0] == {
        'retrieval': {'t2i_R@1': 45.2}}
    with pytest.raises(FileNotFoundError, match='no metrics.json'):
        tool.read_multi_task(str(tmp_path))
    (tmp_path / 'bad.json').write_text('{"loss": 1.0}')
    with pytest.raises(ValueError, match='no main metric'):
        tool.read_multi_task(str(tmp_path / 'bad.json'))


def _table(markdown: str):
    lines = [line for line in markdown.splitlines() if line.startswith('| ')]
    return [[c.strip() for c in line.split('|')[1:-1]] for line in lines]


def test_tool_on_the_tiny_config(shapes_cwd, tool):
    """Classification and retrieval alone at their share of a 6-iteration
    multi-task run and at all 6, the multi-task run trained too; the table
    is printed, written to the work dir and into a benchmark file, and a
    second call reuses every run."""
    work = shapes_cwd / 'work'
    bench = shapes_cwd / 'benchmark.md'
    bench.write_text('# Benchmarks\n\n## Other section\n\nkept\n')
    args = [TINY_CONFIG, '--tasks', 'classification', 'retrieval',
            '--max-iters', '6', '--train-multi-task', '--work-dir',
            str(work), '--write', str(bench), '--cfg-options',
            'default_hooks.logger.interval=2']
    proc = run_tool(TOOL, *args, cwd=shapes_cwd)
    cfg = Config.fromfile(TINY_CONFIG)
    cut_schedule(cfg, 6)
    iterations = entry_iterations(cfg)
    summary = json.loads((work / 'baselines.json').read_text())
    assert summary['iterations'] == iterations
    assert summary['max_iters'] == 6 and summary['seed'] == 0
    expected_runs = ['multi_task'] + [
        f'{t}_{b}' for t in ('classification', 'retrieval')
        for b in ('share', 'whole')
        if not (b == 'share' and iterations[t] == 0)
        and not (b == 'whole' and iterations[t] == 6)
    ]
    assert list(summary['runs']) == expected_runs
    for name in expected_runs:
        result = json.loads((work / name / 'result.json').read_text())
        assert result['iterations'] == (iterations[name.rsplit('_', 1)[0]]
                                        if name.endswith('_share') else 6)
        assert (work / name / f'iter_{result["iterations"]}.pth').exists()
    assert set(summary['runs']['multi_task']['main']) == {
        'classification', 'detection', 'instance_segmentation', 'captioning',
        'retrieval'}
    assert f'[{len(expected_runs)}/{len(expected_runs)}]' in proc.stdout
    assert 'min left' in proc.stdout  # the ETA after the first run

    rows = _table((work / 'baselines.md').read_text())
    assert rows[0][:3] == ['entry', 'metric', 'multi-task (6 it.)']
    by_metric = {(r[0], r[1]): r for r in rows[1:]}
    assert set(by_metric) == {('classification', 'top1'),
                              ('retrieval', 'i2t_R@1'),
                              ('retrieval', 't2i_R@1')}
    top1 = by_metric[('classification', 'top1')]
    multi = summary['multi_task']['classification']['top1']
    whole = summary['whole']['classification']['top1']
    assert top1[2] == f'{multi:.1f}' and top1[6] == f'{whole:.1f}'
    assert top1[4] == str(iterations['classification'])
    assert top1[7] == f'{whole - multi:+.1f}'
    section = bench.read_text()
    assert '## Other section\n\nkept' in section
    assert ('## Single-task baselines: upv2_tiny_shapes.py on shapes'
            in section)
    assert '| classification | top1 |' in section

    again = run_tool(TOOL, *args, cwd=shapes_cwd)
    assert again.stdout.count('reused') == len(expected_runs)
    assert json.loads((work / 'baselines.json').read_text())[
        'share'] == summary['share']
