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

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import eval_map
from mmengine.dataset import pseudo_collate

from mmupv2.registry import DATASETS

from .tiny_shapes_model import build_model, fixed_batch, rebase


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


def test_overfit_classification(tiny_cfg, small_shapes_root):
    model = build_model(tiny_cfg, small_shapes_root)
    batch = fixed_batch(tiny_cfg, 'classification', small_shapes_root, 4)
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
def test_overfit_localization(tiny_cfg, small_shapes_root, task):
    model = build_model(tiny_cfg, small_shapes_root)
    batch = fixed_batch(tiny_cfg, task, small_shapes_root, 2)
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


def test_overfit_captioning(tiny_cfg, small_shapes_root):
    model = build_model(tiny_cfg, small_shapes_root)
    batch = fixed_batch(tiny_cfg, 'captioning', small_shapes_root, 4)
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


def test_overfit_retrieval(tiny_cfg, small_shapes_root):
    model = build_model(tiny_cfg, small_shapes_root)
    batch = fixed_batch(tiny_cfg, 'retrieval', small_shapes_root, 4)
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


def test_overfit_mlm(tiny_cfg, small_shapes_root):
    model = build_model(tiny_cfg, small_shapes_root)
    dataset = rebase(
        copy.deepcopy(tiny_cfg.train_dataloader.mlm.dataloader.dataset.to_dict()),
        small_shapes_root)
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
            ids, mask = model.tokenize(texts)
            masked, labels = head.mask_tokens(model, ids, mask)
            pred = head.vocab_logits(
                model, model.encode_text(masked, mask)).argmax(-1)
            chosen = labels != -100
            correct += int((pred[chosen] == labels[chosen]).sum())
            total += int(chosen.sum())
    assert correct / total >= 0.95, (correct, total, curve[::25])
