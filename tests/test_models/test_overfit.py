# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Whole-model overfit proofs: the full Uni-Perceiver v2 of the shapes
config (the real region-proposal image encoder, text encoder, MoE decoder;
not the stub) memorises a handful of training samples of each task within
a bounded number of iterations.

These are the tests that fail when a gradient path or a loss breaks: each
trains on one fixed batch (read by the real data sets and the config's test
pipelines, no augmentation) and measures the task's own prediction with an
independent metric (top-1, VOC mAP@50 / COCO mAP, recall@1, token
accuracy).
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import eval_map
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmupv2.datasets.shapes import generate_shapes
from mmupv2.registry import DATASETS, MODELS
from mmupv2.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
CONFIG_DATA_ROOT = 'data/shapes/'


@pytest.fixture(scope='module')
def overfit_root(tmp_path_factory) -> str:
    """4 train images of 96 x 96 (1-4 shapes each), their captions and
    texts, in the benchmark's formats."""
    root = tmp_path_factory.mktemp('overfit_shapes')
    generate_shapes(str(root), num_train=4, num_val=1, seed=11, img_size=96)
    return str(root) + '/'


@pytest.fixture(scope='module')
def cfg() -> Config:
    register_all_modules()
    return Config.fromfile(CONFIG)


def _rebase(obj, root: str):
    """The config's data set dict with ``data/shapes/`` replaced by
    ``root`` in every string."""
    if isinstance(obj, dict):
        return {k: _rebase(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rebase(v, root) for v in obj)
    if isinstance(obj, str) and obj.startswith(CONFIG_DATA_ROOT):
        return root + obj[len(CONFIG_DATA_ROOT):]
    return obj


def build_model(cfg: Config, root: str):
    model_cfg = _rebase(copy.deepcopy(cfg.model.to_dict()), root)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def fixed_batch(cfg: Config, task: str, root: str, num: int,
                train_split: bool = True) -> dict:
    """The first ``num`` training samples of ``task``, through the val
    pipeline of the config (deterministic), collated."""
    dataset = _rebase(
        copy.deepcopy(cfg.val_dataloader[task].dataset.to_dict()), root)
    if train_split:
        for key in ('ann_file', ):
            dataset[key] = dataset[key].replace('val', 'train')
        if 'split' in dataset:
            dataset['split'] = 'train'
    dataset = DATASETS.build(dataset)
    return pseudo_collate([dataset[i] for i in range(num)])


def overfit(model, batch: dict, iters: int, lr: float = 1e-3,
            prepare=None) -> list:
    """``iters`` AdamW steps on one batch; returns the loss curve."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0)
    model.train()
    data = model.data_preprocessor(batch, True)
    if prepare is not None:
        prepare(data['data_samples'])
    curve = []
    for _ in range(iters):
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curve.append(float(loss))
    return curve


def eval_data(model, batch: dict, prepare=None) -> dict:
    """The batch preprocessed for inference (model in eval mode)."""
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
    if prepare is not None:
        prepare(data['data_samples'])
    return data


def predict(model, batch: dict, prepare=None):
    data = eval_data(model, batch, prepare)
    with torch.no_grad():
        return model(**data, mode='predict')


def test_overfit_classification(cfg, overfit_root):
    model = build_model(cfg, overfit_root)
    batch = fixed_batch(cfg, 'classification', overfit_root, 4)
    curve = overfit(model, batch, 40)
    preds = predict(model, batch)
    labels = [int(s.gt_label) for s in preds]
    top1 = [int(s.pred_label) for s in preds]
    assert top1 == labels, (top1, labels, curve[::10])
    assert curve[-1] < 0.1 * curve[0]


def _voc_map50(preds) -> float:
    results, annotations = [], []
    num_classes = None
    for sample in preds:
        pred = sample.pred_instances
        num_classes = num_classes or len(sample.metainfo['classes']) if (
            'classes' in sample.metainfo) else 7
        dets = []
        for c in range(num_classes):
            keep = pred.labels == c
            dets.append(np.concatenate([
                pred.bboxes[keep].numpy(),
                pred.scores[keep].numpy()[:, None]
            ], axis=1).astype(np.float32))
        results.append(dets)
        annotations.append(
            dict(bboxes=sample.gt_instances.bboxes.numpy(),
                 labels=sample.gt_instances.labels.numpy()))
    mean_ap, _ = eval_map(results, annotations, iou_thr=0.5, logger='silent')
    return mean_ap


@pytest.mark.parametrize('task', ['detection', 'instance_segmentation'])
def test_overfit_localization(cfg, overfit_root, task):
    model = build_model(cfg, overfit_root)
    batch = fixed_batch(cfg, task, overfit_root, 2)
    curve = overfit(model, batch, 150)
    preds = predict(model, batch)
    # predictions are rescaled to the original image, as the ground truth
    for sample, inputs in zip(preds, batch['data_samples']):
        sample.gt_instances = inputs.gt_instances
    map50 = _voc_map50(preds)
    assert map50 >= 0.9, (map50, curve[::25])


def one_caption(samples) -> None:
    """Keep each image's first caption: a one-to-one mapping to memorise
    (training otherwise draws one of three per step)."""
    for s in samples:
        s.gt_caption = s.gt_caption[:1]


def test_overfit_captioning(cfg, overfit_root):
    model = build_model(cfg, overfit_root)
    batch = fixed_batch(cfg, 'captioning', overfit_root, 4)
    curve = overfit(model, batch, 120, prepare=one_caption)
    head = model.tasks['captioning']
    data = eval_data(model, batch, one_caption)
    with torch.no_grad():
        logits, targets, valid = head(model, **data)
    acc = (logits.argmax(-1)[valid] == targets[valid]).float().mean()
    assert acc >= 0.95, (float(acc), curve[::20])
    preds = predict(model, batch, one_caption)
    exact = [s.pred_caption == s.gt_caption[0] for s in preds]
    assert sum(exact) >= 3, [(s.pred_caption, s.gt_caption[0])
                             for s in preds]


def test_overfit_retrieval(cfg, overfit_root):
    model = build_model(cfg, overfit_root)
    batch = fixed_batch(cfg, 'retrieval', overfit_root, 4)
    curve = overfit(model, batch, 100, prepare=one_caption)
    head = model.tasks['retrieval']
    data = eval_data(model, batch)
    with torch.no_grad():
        samples = data['data_samples']
        image = head(model, data['inputs'], samples)
        texts = [s.gt_caption[0] for s in samples]
        text = torch.nn.functional.normalize(
            head.text_features(model, texts), dim=-1)
    sim = image @ text.t()
    target = torch.arange(len(samples))
    assert (sim.argmax(1) == target).all(), (sim, curve[::10])
    assert (sim.argmax(0) == target).all(), (sim, curve[::10])


def test_overfit_mlm(cfg, overfit_root):
    model = build_model(cfg, overfit_root)
    dataset = _rebase(
        copy.deepcopy(cfg.train_dataloader.mlm.dataloader.dataset.to_dict()),
        overfit_root)
    dataset = DATASETS.build(dataset)
    batch = pseudo_collate([dataset[i] for i in range(4)])
    curve = overfit(model, batch, 150)
    # fresh random maskings of the memorised texts
    model.eval()
    head = model.tasks['mlm']
    torch.manual_seed(1)
    correct = total = 0
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        texts = head._texts(data['data_samples'])
        for _ in range(5):
            ids, mask = model.text_encoder.tokenize(texts)
            masked, labels = head.mask_tokens(model, ids, mask)
            pred = head.vocab_logits(model, masked, mask).argmax(-1)
            chosen = labels != -100
            correct += int((pred[chosen] == labels[chosen]).sum())
            total += int(chosen.sum())
    assert correct / total >= 0.95, (correct, total, curve[::25])
