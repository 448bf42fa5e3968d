# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""tools/test.py --out / --show-dir on the tiny shapes config (random
weights, 4 val images per task), run as a user would: every dump is read
by its task's metric code and gives the numbers printed by the online
evaluation; one drawing per evaluated image per data set."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import mmengine
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.evaluation import Accuracy
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmupv2.datasets.shapes import generate_shapes
from mmupv2.engine.runner.test_outputs import dump_files, out_prefix
from mmupv2.evaluation.metrics import (
    DumpTaskResults,
    ImageTextRetrievalMetric,
    caption_scores,
)
from mmupv2.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
NUM_VAL = 4
#: COCO's summary stats, in CocoMetric's key order.
COCO_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


def test_out_prefix_and_files(tmp_path):
    assert out_prefix('w/preds.pkl', 'det') == 'w/preds.det'
    assert out_prefix('w/preds.json', 'det') == 'w/preds.det'
    assert out_prefix('w/preds', 'det') == 'w/preds.det'
    assert out_prefix('w/preds/', 'det') == osp.join('w/preds/', 'det')
    assert out_prefix(str(tmp_path), 'det') == str(tmp_path / 'det')
    assert dump_files('p.pkl', 'seg', 'instance_segmentation') == [
        'p.seg.bbox.json', 'p.seg.segm.json'
    ]
    assert dump_files('p.pkl', 'det', 'detection') == ['p.det.bbox.json']
    assert dump_files('p.pkl', 'cls', 'classification') == ['p.cls.pkl']
    assert dump_files('p.pkl', 'cap', 'captioning') == ['p.cap.json']
    assert dump_files('p.pkl', 'ret', 'retrieval') == ['p.ret.pkl']
    assert dump_files('p.pkl', 'text', 'mlm') == []
    with pytest.raises(ValueError, match="task 'mlm'"):
        DumpTaskResults(task='mlm', out_file='x.pkl')


@pytest.fixture(scope='module')
def tested(tmp_path_factory):
    """Run tools/test.py once with --out, --show-dir and --out-metrics in a
    folder with a generated shapes set (``data/shapes/``, the config's
    relative data root) and a random checkpoint of the config's model."""
    tmp = tmp_path_factory.mktemp('test_outputs')
    generate_shapes(str(tmp / 'data' / 'shapes'), num_train=2,
                    num_val=NUM_VAL, seed=5, img_size=96)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        cfg = Config.fromfile(CONFIG)
        init_default_scope('mmupv2')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
    finally:
        os.chdir(cwd)
    ckpt = str(tmp / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=0)), ckpt)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'), CONFIG, ckpt,
         '--work-dir', str(tmp / 'work'), '--out', str(tmp / 'out' /
                                                       'preds.pkl'),
         '--show-dir', 'vis', '--out-metrics', str(tmp / 'metrics.json')],
        cwd=str(tmp), env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((tmp / 'metrics.json').read_text())['results']
    metrics = {(r['dataset'], r['metric']): r['value'] for r in rows}
    return tmp, metrics, proc.stdout + proc.stderr


def _coco_stats(ann_file: str, results: str, iou_type: str) -> list:
    """COCOeval's 6 AP stats with mmdet CocoMetric's settings (all
    categories and images of the annotation file, maxDets 100/300/1000)."""
    gt = COCO(ann_file)
    predictions = mmengine.load(results)
    if iou_type == 'segm':  # as mmdet: the mask area, not the box's
        for p in predictions:
            p.pop('bbox')
    coco_eval = COCOeval(gt, gt.loadRes(predictions), iou_type)
    coco_eval.params.catIds = gt.getCatIds()
    coco_eval.params.imgIds = gt.getImgIds()
    coco_eval.params.maxDets = [100, 300, 1000]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats[:6].tolist()


@pytest.mark.parametrize('entry,iou_types', [
    ('detection', ('bbox', )),
    ('instance_segmentation', ('bbox', 'segm')),
])
def test_out_coco_results_give_the_online_metrics(tested, entry, iou_types):
    tmp, metrics, _ = tested
    ann_file = str(tmp / 'data' / 'shapes' / 'annotations' /
                   'instances_val.json')
    gt_images = {img['id'] for img in mmengine.load(ann_file)['images']}
    for iou_type in iou_types:
        path = tmp / 'out' / f'preds.{entry}.{iou_type}.json'
        results = mmengine.load(str(path))
        assert results, f'{path} is empty'
        assert {r['image_id'] for r in results} <= gt_images
        assert all(len(r['bbox']) == 4 and 0 <= r['score'] <= 1
                   for r in results)
        if iou_type == 'segm':
            assert all(set(r['segmentation']) == {'size', 'counts'}
                       for r in results)
        stats = _coco_stats(ann_file, str(path), iou_type)
        for key, value in zip(COCO_KEYS, stats):
            online = metrics[(entry, f'{entry}/{iou_type}_{key}')]
            assert round(value, 3) == pytest.approx(online, abs=1e-6), (
                entry, iou_type, key)


def test_out_classification_scores(tested):
    tmp, metrics, _ = tested
    dump = mmengine.load(str(tmp / 'out' / 'preds.classification.pkl'))
    labels = (tmp / 'data' / 'shapes' / 'classification' /
              'val.txt').read_text().split('\n')
    labels = [line for line in labels if line.strip()]
    assert dump['pred_score'].shape == (len(labels), 7)
    assert dump['classes'][:2] == ['circle', 'square']
    np.testing.assert_array_equal(dump['pred_label'],
                                  dump['pred_score'].argmax(1))
    assert [osp.basename(p) for p in dump['img_path']] == [
        osp.basename(line.split()[0]) for line in labels
    ]
    top1 = Accuracy.calculate(
        torch.from_numpy(dump['pred_score']),
        torch.from_numpy(dump['gt_label']), topk=(1, ))[0][0]
    assert float(top1) == pytest.approx(
        metrics[('classification', 'classification/top1')],
        abs=1e-4)


def test_out_captions(tested):
    tmp, metrics, _ = tested
    results = mmengine.load(str(tmp / 'out' / 'preds.captioning.json'))
    assert len(results) == NUM_VAL
    assert all(set(r) == {'image_id', 'caption'} for r in results)
    karpathy = mmengine.load(
        str(tmp / 'data' / 'shapes' / 'annotations' /
            'karpathy_shapes.json'))
    refs = {
        img.get('cocoid', img['imgid']):
        [s['raw'] for s in img['sentences']]
        for img in karpathy['images'] if img['split'] == 'val'
    }
    scores = caption_scores({r['image_id']: r['caption']
                             for r in results}, refs, ('BLEU', 'CIDEr'))
    for key in ('BLEU-4', 'CIDEr'):
        assert scores[key] == pytest.approx(
            metrics[('captioning', f'captioning/{key}')], abs=1e-4)


def test_out_retrieval_similarity(tested):
    tmp, metrics, _ = tested
    dump = mmengine.load(str(tmp / 'out' / 'preds.retrieval.pkl'))
    num_texts = len(dump['text_to_image'])
    assert dump['similarity'].shape == (NUM_VAL, num_texts)
    assert len(dump['texts']) == num_texts
    assert list(dump['image_ids']) == sorted(dump['image_ids'])
    recalls = ImageTextRetrievalMetric.recalls_from_similarity(
        torch.from_numpy(dump['similarity']),
        torch.from_numpy(dump['text_to_image']), (1, 5, 10))
    for key, value in recalls.items():
        assert value == pytest.approx(
            metrics[('retrieval', f'retrieval/{key}')], abs=1e-4), key


def test_show_dir_draws_every_image_of_every_data_set(tested):
    tmp, _, log = tested
    folders = glob.glob(str(tmp / 'work' / '*' / 'vis'))
    assert len(folders) == 1, folders  # WORK_DIR/TIMESTAMP/vis, as mmdet
    vis = folders[0]
    ann = mmengine.load(
        str(tmp / 'data' / 'shapes' / 'annotations' / 'instances_val.json'))
    coco_names = sorted(osp.basename(i['file_name']) for i in ann['images'])
    for entry in ('detection', 'instance_segmentation', 'classification',
                  'captioning', 'retrieval'):
        drawn = sorted(os.listdir(osp.join(vis, entry)))
        assert len(drawn) == NUM_VAL, (entry, drawn)
        if entry in ('detection', 'instance_segmentation'):
            assert drawn == coco_names
        for name in drawn:
            assert mmengine.fileio.get(osp.join(vis, entry, name))[:4] in (
                b'\x89PNG', b'\xff\xd8\xff\xe0', b'\xff\xd8\xff\xe1',
                b'\xff\xd8\xff\xdb')
        assert f"{NUM_VAL} drawings of data set '{entry}'" in log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_write_the_same_dumps_and_drawings(tested):
    """tools/dist_test.sh, 2 gloo processes: every dump holds the whole
    data set (the ranks' shares collected, padding dropped), as one process
    wrote it; every image is drawn once (retrieval by rank 0)."""
    tmp, _, _ = tested
    env = dict(os.environ)
    env.update(PYTHONPATH=ROOT + os.pathsep + env.get('PYTHONPATH', ''),
               PYTHON=sys.executable, PORT=str(_free_port()))
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_test.sh'), CONFIG,
         str(tmp / 'random.pth'), '2', '--work-dir', str(tmp / 'dist'),
         '--out', str(tmp / 'dist_out') + '/', '--show-dir',
         str(tmp / 'dist_vis')],
        cwd=str(tmp), env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def load(folder, name):
        return mmengine.load(str(tmp / folder / name))

    one = load('out', 'preds.classification.pkl')
    two = load('dist_out', 'classification.pkl')
    np.testing.assert_allclose(two['pred_score'], one['pred_score'],
                               atol=1e-5)
    assert two['img_path'] == one['img_path']
    one = load('out', 'preds.retrieval.pkl')
    two = load('dist_out', 'retrieval.pkl')
    np.testing.assert_allclose(two['similarity'], one['similarity'],
                               atol=1e-5)
    assert load('dist_out', 'captioning.json') == load(
        'out', 'preds.captioning.json')
    for name in ('detection.bbox.json', 'instance_segmentation.segm.json'):
        one, two = load('out', 'preds.' + name), load('dist_out', name)
        assert sorted(r['image_id'] for r in two) == sorted(
            r['image_id'] for r in one)
        np.testing.assert_allclose(
            sorted(r['score'] for r in two), sorted(r['score'] for r in one),
            atol=1e-5)
    for entry in ('detection', 'instance_segmentation', 'classification',
                  'captioning', 'retrieval'):
        assert len(os.listdir(tmp / 'dist_vis' / entry)) == NUM_VAL, entry
