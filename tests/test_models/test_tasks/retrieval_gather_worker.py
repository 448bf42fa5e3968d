# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Workers of the 2-process retrieval gather test.

A module of its own, imported by a top-level name, because the spawned
processes must import the worker function and pytest's importlib mode gives
test files names (``tests.test_models...``) that a fresh process cannot
import.
"""
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F

from mmupv2.models.tasks import RetrievalTask

GLOBAL_BATCH, IN_DIMS, DIMS = 8, 5, 4


def setup():
    """Features of a global batch from two linear 'encoders'."""
    torch.manual_seed(0)
    images = torch.randn(GLOBAL_BATCH, IN_DIMS)
    texts = images + 0.5 * torch.randn(GLOBAL_BATCH, IN_DIMS)
    image_enc = torch.nn.Linear(IN_DIMS, DIMS)
    text_enc = torch.nn.Linear(IN_DIMS, DIMS)
    return images, texts, image_enc, text_enc, RetrievalTask()


def losses_of(rows: slice, gather: bool = True):
    """The retrieval losses of the rows ``rows`` of the global batch, with
    the encoders and the task, as ``(losses, modules)``."""
    images, texts, image_enc, text_enc, task = setup()
    task.gather = gather
    losses = task.contrastive_loss(
        F.normalize(image_enc(images[rows]), dim=-1),
        F.normalize(text_enc(texts[rows]), dim=-1))
    return losses, (image_enc, text_enc, task)


def loss_and_grads(rows: slice):
    """Gradients of the encoders and the temperature for the rows
    ``rows`` of the global batch (negatives gathered from all ranks)."""
    losses, modules = losses_of(rows)
    sum(losses.values()).backward()
    return [p.grad.clone() for m in modules for p in m.parameters()]


def worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        local = GLOBAL_BATCH // world_size
        grads = loss_and_grads(slice(rank * local, (rank + 1) * local))
        for grad in grads:  # what DDP does: average over ranks
            dist.all_reduce(grad)
            grad /= world_size
        torch.save(grads, os.path.join(out_dir, f'grads{rank}.pth'))
        rows = slice(rank * local, (rank + 1) * local)
        with torch.no_grad():
            losses = {
                name: {
                    k: v.detach()
                    for k, v in losses_of(rows, gather)[0].items()
                }
                for name, gather in (('gather', True), ('local', False))
            }
        torch.save(losses, os.path.join(out_dir, f'losses{rank}.pth'))
    finally:
        dist.destroy_process_group()
