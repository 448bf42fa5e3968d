# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The main job end to end, small: a few iterations of every task on a tiny
shapes set, then evaluation of every task, metrics.json and drawings."""
import json
import os.path as osp
import subprocess
import sys

from mmupv2.datasets.shapes import generate_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_smoke(tmp_path):
    generate_shapes(str(tmp_path / 'data' / 'shapes'), num_train=16,
                    num_val=4, seed=1, img_size=96)
    (tmp_path / 'docs').mkdir()
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'misc', 'demo.py'),
         '--max-iters', '8', '--work-dir', str(work), '--num-vis', '1',
         '--curve-points', '1',
         '--write', str(tmp_path / 'docs' / 'benchmark.md')],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work / 'metrics.json').read_text())
    assert set(summary) == {'classification', 'detection',
                            'instance_segmentation', 'captioning',
                            'retrieval'}
    assert set(summary['retrieval']) == {'i2t_R@1', 't2i_R@1'}
    for fields in summary.values():
        for value in fields.values():
            assert 0 <= value <= 100 or value == -100  # COCO's "no data"
    assert 'mmupv2 demo: shapes val' in proc.stdout
    drawn = list((work / 'vis').rglob('*.*'))
    assert drawn, 'no drawn predictions'
    # the quality section: one row per metric, floors, and the entries'
    # iteration counts, which add up to the iterations trained
    # the learning curve: one evaluation during training (iteration 4) and
    # the final one, in the work dir and next to the benchmark file
    assert (work / 'learning_curve.png').stat().st_size > 1000
    assert (tmp_path / 'docs' / 'demo_learning_curve.png').exists()
    assert '(iterations 4, 8)' in proc.stdout
    section = (tmp_path / 'docs' / 'benchmark.md').read_text()
    assert '## Demo quality (make demo)' in section
    rows = [line.split('|')[1:-1] for line in section.splitlines()
            if line.startswith('| ') and '---' not in line][1:]
    assert len(rows) == 7
    by_metric = {r[1].strip(): r for r in rows}
    assert by_metric['top1'][2].strip() == '90'
    assert by_metric['CIDEr'][2].strip() == '80'
    per_task = {r[0].strip(): int(r[5]) for r in rows}
    # MLM trains without a metric: the five evaluated tasks get the rest
    assert sum(per_task.values()) <= 8


def test_demo_config_beats_chance_on_classification(tmp_path):
    """A short run of the demo's config (its pretrained encoders, recipe
    and pipelines) on classification alone -- the easiest task -- ends well
    above what the most frequent class would give on a held-out split."""
    generate_shapes(str(tmp_path / 'data' / 'shapes'), num_train=240,
                    num_val=48, seed=3, img_size=96)
    labels = [
        line.split()[-1] for line in (
            tmp_path / 'data' / 'shapes' / 'classification' /
            'val.txt').read_text().splitlines()
    ]
    majority = 100 * max(labels.count(label) for label in labels) / len(
        labels)
    proc = subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'analysis_tools', 'train_entries.py'),
         osp.join(ROOT, 'configs', 'uniperceiver_v2',
                  'upv2_lite0-minilm_shapes.py'),
         '--entries', 'classification', '--iters', '60',
         '--work-dir', str(tmp_path / 'work')],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = proc.stdout.strip().splitlines()[-1]
    top1 = json.loads(result.split(': ', 1)[1])[
        'classification/classification/top1']
    # measured 45.8 (majority class 22.9, uniform chance 14.3)
    assert top1 >= majority + 15, (top1, majority)


def _load_demo_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmupv2_demo', osp.join(ROOT, 'tools', 'misc', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ListDataset:

    def __init__(self, infos):
        self.infos = infos

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return self.infos[index]


class _Loader:

    def __init__(self, dataset):
        self.dataset = dataset


def test_demo_draws_the_configs_val_images():
    """The drawings follow the config's data (another data set's images),
    preferring the detection entry; a data set without images is passed
    over."""
    demo = _load_demo_module()
    loop = type('Loop', (), {})()
    loop.tasks = {'text': 'mlm', 'classification': 'classification',
                  'detection': 'detection'}
    loop.dataloaders = {
        'text': _Loader(_ListDataset([dict(text='a red kite')])),
        'classification': _Loader(_ListDataset(
            [dict(img_path=f'/my/data/cls_{i}.jpg') for i in range(3)])),
        'detection': _Loader(_ListDataset(
            [dict(img_path=f'/my/data/det_{i}.jpg') for i in range(5)])),
    }
    assert demo.val_image_paths(loop, 2) == [
        '/my/data/det_0.jpg', '/my/data/det_1.jpg']
    del loop.tasks['detection'], loop.dataloaders['detection']
    assert demo.val_image_paths(loop, 9) == [
        f'/my/data/cls_{i}.jpg' for i in range(3)]
