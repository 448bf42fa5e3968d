# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Workers of the 2-process sharded target encoding test.

A module of its own, imported by a top-level name, because the spawned
processes must import the worker function and pytest's importlib mode gives
test files names (``tests.test_models...``) that a fresh process cannot
import.

The model is the tiny one (``configs/_base_/models/upv2_tiny.py``) with the
stub image encoder and every dropout off, so one process and two give the
same network; 7 class names and a vocabulary subset of 13 targets split
unevenly over 2 ranks (4 + 3, 7 + 6).
"""
import copy
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch.nn.parallel import DistributedDataParallel

import mmupv2.testing  # noqa: F401  (registers StubImageEncoder)
from mmupv2.registry import MODELS
from mmupv2.structures import UPv2DataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY_MODEL = osp.join(ROOT, 'configs', '_base_', 'models', 'upv2_tiny.py')
CLASSES = ['circle', 'square', 'triangle', 'star', 'ring', 'cross', 'heart']
#: one caption per image, 4 tokens each: both ranks' halves hold as many
#: caption tokens, so the mean of their token-mean losses is the global one
CAPTIONS = ('a red circle left', 'a blue square right', 'a green star left',
            'a yellow ring right')
#: every caption word, one token each, and 'small': 12 + the end token
VOCABULARY = 'a red circle left blue square right green star yellow ring small'
GLOBAL_BATCH = 4
#: the tasks compared, and the losses each must give
TASKS = ('classification', 'captioning')


def build_model(tokenizer: str):
    """The seeded tiny model in float64 (no dropout, no drop path, no gate
    noise) with 7 class names and ``vocabulary='data'`` over the caption
    words."""
    cfg = Config.fromfile(TINY_MODEL)
    cfg.merge_from_dict(copy.deepcopy(dict(model=dict(
        image_encoder=dict(_delete_=True, type='StubImageEncoder',
                           embed_dims=64, num_regions=6),
        text_encoder=dict(tokenizer=tokenizer, max_length=16,
                          hf_config=dict(hidden_dropout_prob=0.0,
                                         attention_probs_dropout_prob=0.0)),
        # keep the MoE routing, without its training noise
        decoder=dict(moe_cfg=dict(num_experts=8, top_k=2, noise_std=0.0)),
        tasks=dict(_delete_=True,
                   classification=dict(type='ClassificationTask',
                                       classes=CLASSES),
                   captioning=dict(type='CaptioningTask', max_length=8)),
        vocabulary='data'))))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmupv2'):
        model = MODELS.build(cfg.model.to_dict())
    tokenizer = model.text_encoder.tokenizer
    ids = tokenizer(VOCABULARY, add_special_tokens=False)['input_ids']
    model.set_vocabulary(ids)
    # float64: two reduction orders (one rank's sum, two ranks' sum) then
    # agree to ~1e-15, so the 1e-6 tolerance sees only real differences
    return model.double().train()


def batch(task: str, rows: slice) -> Tuple[torch.Tensor, list]:
    """The rows ``rows`` of the global batch of ``task``: 64 x 64 images
    and their samples."""
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(GLOBAL_BATCH, 3, 64, 64, generator=gen,
                         dtype=torch.float64)
    samples = []
    for i in range(GLOBAL_BATCH):
        sample = UPv2DataSample(metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.),
            batch_input_shape=(64, 64)))
        sample.set_task(task).set_gt_label((2 * i + 1) % len(CLASSES))
        sample.set_gt_caption([CAPTIONS[i]])
        sample.gt_instances = InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        samples.append(sample)
    return images[rows], samples[rows]


def loss_and_grads(model, task: str, rows: slice
                   ) -> Tuple[float, Dict[str, torch.Tensor]]:
    """One step of ``task`` on the rows ``rows``: the summed loss and the
    gradient of every parameter that gets one (``model`` may be DDP)."""
    module = getattr(model, 'module', model)
    module.zero_grad(set_to_none=True)
    images, samples = batch(task, rows)
    losses = model(images, samples, mode='loss')
    loss = sum(losses.values())
    loss.backward()
    grads = {
        name: p.grad.detach().clone()
        for name, p in module.named_parameters() if p.grad is not None
    }
    return float(loss.detach()), grads


def target_rows(model, task: str) -> int:
    """The targets the task compares with: class names or vocabulary."""
    if task == 'classification':
        return len(model.tasks[task].classes)
    return len(model.vocabulary_token_ids())


def worker(rank: int, world_size: int, port: int, out_dir: str,
           tokenizer: str, shard: Optional[bool] = True) -> None:
    """Each rank trains a step of every task of :data:`TASKS` on its half
    of the global batch under DDP, counting the texts it encodes, and
    saves the mean loss over ranks and the (averaged) gradients."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        model = build_model(tokenizer)
        model.shard_targets = shard
        encoded: List[int] = []
        encode = model._encode_target_chunk

        def counting(input_ids, *args):
            encoded.append(input_ids.shape[0])
            return encode(input_ids, *args)

        model._encode_target_chunk = counting
        ddp = DistributedDataParallel(model, find_unused_parameters=True)
        local = GLOBAL_BATCH // world_size
        rows = slice(rank * local, (rank + 1) * local)
        out = {}
        for task in TASKS:
            encoded.clear()
            loss, grads = loss_and_grads(ddp, task, rows)
            loss_t = torch.tensor([loss])
            dist.all_reduce(loss_t)
            out[task] = dict(loss=float(loss_t) / world_size, grads=grads,
                             encoded=sum(encoded),
                             targets=target_rows(model, task))
        torch.save(out, osp.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()
