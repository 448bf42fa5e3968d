# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Task interference: how much do the tasks' gradients agree?

This answers the users' question about task interference (issue #17 of the
official Uni-Perceiver repository): do the tasks pull the shared weights the
same way or against each other? For every task (every entry of the multi-task
``train_dataloader``) we take the gradient of its loss with respect to the
*shared* parameters, averaged over a few batches, and compare the tasks
pairwise by cosine similarity: close to ``+1`` the tasks pull the shared
weights the same way, close to ``0`` they are unrelated, negative values mean
conflicting updates (the interference that MT-AdamW's per-task gradient
normalisation and unmixed sampling are meant to tame).

**Shared parameters** are the parameters (with ``requires_grad``) that get a
gradient from at least two tasks, i.e. that autograd reaches from the loss of
two or more tasks in at least one of their batches. Task-specific parameters
(a head used by one task only) are left out: they cannot interfere. A task's
gradient vector is its averaged gradient on all shared parameters,
concatenated in one order for all tasks (that of :func:`shared_gradients`'
names), with zeros for a shared parameter that the task does not reach (its
gradient there is zero).

The cosine is invariant to the scale of each task's loss, so loss weights
:math:`\\omega_k` do not change it.

Typical use (``tools/analysis_tools/task_interference.py`` does this)::

    grads = task_gradients(model, {'cls': cls_batches, 'det': det_batches})
    names, cos = cosine_matrix(grads)   # cos: (K, K), symmetric, diag 1
"""
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper


def _batch_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """The total (parsed) loss of one collated batch, in training mode."""
    module = model.module if is_model_wrapper(model) else model
    data = module.data_preprocessor(batch, True)
    if isinstance(data, dict):
        losses = model(**data, mode='loss')
    else:
        losses = model(*data, mode='loss')
    loss, _ = module.parse_losses(losses)
    return loss


def per_task_gradients(
    model: nn.Module,
    batches_per_task: Mapping[str, Iterable[dict]],
    storage_device: Optional[Union[str, torch.device]] = 'cpu',
) -> Dict[str, Dict[str, torch.Tensor]]:
    """Each task's loss gradient, averaged over its batches, per parameter.

    For every task, each batch goes through ``data_preprocessor(batch,
    True)`` and ``model(**data, mode='loss')``; the losses are summed by
    ``parse_losses`` (as in training) and back-propagated on their own. The
    model is in training mode meanwhile (its previous mode and the
    parameters' ``.grad`` are restored afterwards); buffers such as batch
    norm statistics are updated as in a training step.

    Args:
        model: an mmengine ``BaseModel`` (or a model wrapper around one)
            whose ``forward(..., mode='loss')`` returns a loss dict.
        batches_per_task: ``{task name: collated batches}``; each iterable
            is consumed once (it may be lazy, e.g. an ``islice`` of a data
            loader).
        storage_device: where the averaged gradients are kept (the CPU by
            default, so that K copies of a large model's gradients need not
            fit on the accelerator); ``None`` keeps them on the parameters'
            device.

    Returns:
        ``{task: {parameter name: averaged gradient}}``, each gradient of the
        parameter's shape, float32 or the parameter's dtype if wider; only the
        parameters the task reached in at least one batch are present (a
        parameter reached in some batches only is averaged over all of them,
        counting zero for the others).

    Raises:
        ValueError: a task has no batch, or no task is given.
        RuntimeError: a task's loss does not depend on any parameter.
    """
    if not batches_per_task:
        raise ValueError('per_task_gradients: no task given')
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    saved_grads = [p.grad for _, p in named]
    was_training = model.training
    model.train()
    result: Dict[str, Dict[str, torch.Tensor]] = {}
    try:
        for task, batches in batches_per_task.items():
            sums: Dict[str, torch.Tensor] = {}
            num_batches = 0
            for batch in batches:
                for _, p in named:
                    p.grad = None
                loss = _batch_loss(model, batch)
                if not loss.requires_grad:
                    raise RuntimeError(
                        f"per_task_gradients: the loss of task '{task}' does "
                        'not depend on any trainable parameter')
                loss.backward()
                for name, p in named:
                    if p.grad is None:
                        continue
                    grad = p.grad.detach()
                    if storage_device is not None:
                        grad = grad.to(storage_device)
                    grad = grad.to(torch.promote_types(grad.dtype,
                                                       torch.float32))
                    if name in sums:
                        sums[name].add_(grad)
                    else:
                        sums[name] = grad.clone()
                num_batches += 1
            if num_batches == 0:
                raise ValueError(
                    f"per_task_gradients: task '{task}' has no batch")
            result[task] = {
                name: s.div_(num_batches)
                for name, s in sums.items()
            }
    finally:
        for (_, p), grad in zip(named, saved_grads):
            p.grad = grad
        model.train(was_training)
    return result


def shared_gradients(
    grads_per_task: Mapping[str, Mapping[str, torch.Tensor]],
    min_tasks: int = 2,
) -> Tuple[List[str], Dict[str, torch.Tensor]]:
    """Flatten the tasks' gradients on the shared parameters.

    Args:
        grads_per_task: the output of :func:`per_task_gradients`. Its
            per-task dicts are emptied as they are flattened (to keep one
            copy of the gradients in memory).
        min_tasks: a parameter is shared when at least this many tasks
            reach it.

    Returns:
        tuple: ``(names, grads)``: the shared parameters' names (in the order
        of the first task that has each) and ``{task: (P,) vector}``, the
        concatenated gradients (zeros where a task does not reach a shared
        parameter), ``P`` the number of shared elements.

    Raises:
        ValueError: fewer than two tasks, or no shared parameter.
    """
    if len(grads_per_task) < 2:
        raise ValueError('task interference needs at least two tasks, got '
                         f'{list(grads_per_task)}')
    counts: Dict[str, int] = {}
    shapes: Dict[str, Tuple[torch.Size, torch.dtype, torch.device]] = {}
    for grads in grads_per_task.values():
        for name, g in grads.items():
            counts[name] = counts.get(name, 0) + 1
            shapes.setdefault(name, (g.shape, g.dtype, g.device))
    names = [n for n, c in counts.items() if c >= min_tasks]
    if not names:
        raise ValueError(
            f'no parameter gets a gradient from {min_tasks} or more of the '
            f'tasks {list(grads_per_task)}: nothing is shared')
    flat: Dict[str, torch.Tensor] = {}
    for task, grads in grads_per_task.items():
        parts = []
        for name in names:
            shape, dtype, device = shapes[name]
            g = grads.pop(name, None)
            parts.append(
                torch.zeros(shape.numel(), dtype=dtype, device=device)
                if g is None else g.reshape(-1))
        flat[task] = torch.cat(parts)
        grads.clear()  # type: ignore[attr-defined]
    return names, flat


def task_gradients(
    model: nn.Module,
    batches_per_task: Mapping[str, Iterable[dict]],
    min_tasks: int = 2,
    storage_device: Optional[Union[str, torch.device]] = 'cpu',
) -> Dict[str, torch.Tensor]:
    """Each task's averaged loss gradient on the shared parameters.

    :func:`per_task_gradients` followed by :func:`shared_gradients` (see the
    module docstring for what "shared" means).

    Args:
        model: the model (see :func:`per_task_gradients`).
        batches_per_task: ``{task name: collated batches}``.
        min_tasks: how many tasks must reach a parameter for it to count as
            shared.
        storage_device: where the gradients are kept.

    Returns:
        ``{task: (P,) gradient vector}``, all of the same length ``P``.
    """
    per_task = per_task_gradients(model, batches_per_task, storage_device)
    return shared_gradients(per_task, min_tasks)[1]


@torch.no_grad()
def cosine_matrix(grads: Mapping[str, torch.Tensor],
                  chunk_size: int = 1 << 20
                  ) -> Tuple[List[str], torch.Tensor]:
    """Pairwise cosine similarity of gradient vectors.

    The Gram matrix is accumulated in float64 over chunks of ``chunk_size``
    elements, so memory stays ``O(K * chunk_size)`` for gradients of any
    length.

    Args:
        grads: ``{task: (P,) vector}`` (any shapes with ``P`` elements; all
            of the same ``P``), e.g. from :func:`task_gradients`.
        chunk_size: elements per chunk.

    Returns:
        tuple: ``(names, cos)``: the task names in the order of ``grads``
        and a float64 ``(K, K)`` tensor, symmetric, with values in
        ``[-1, 1]`` and ones on the diagonal. A task whose gradient is zero
        everywhere has no direction: its row and column are NaN.

    Raises:
        ValueError: no vector, or vectors of different lengths.
    """
    names = list(grads)
    if not names:
        raise ValueError('cosine_matrix: no gradient given')
    vectors = [grads[n].reshape(-1) for n in names]
    length = vectors[0].numel()
    for name, v in zip(names, vectors):
        if v.numel() != length:
            raise ValueError(
                f'cosine_matrix: gradient lengths differ ({names[0]}: '
                f'{length}, {name}: {v.numel()})')
    k = len(names)
    gram = torch.zeros(k, k, dtype=torch.float64)
    for start in range(0, length, chunk_size):
        block = torch.stack([
            v[start:start + chunk_size].to('cpu', torch.float64)
            for v in vectors
        ])  # (K, chunk)
        gram += block @ block.T
    norms = gram.diagonal().clamp(min=0).sqrt()  # (K, )
    cos = gram / (norms[:, None] * norms[None, :])
    cos = cos.clamp(-1.0, 1.0)
    cos = (cos + cos.T) / 2
    valid = norms > 0
    cos[~valid, :] = float('nan')
    cos[:, ~valid] = float('nan')
    idx = torch.arange(k)[valid]
    cos[idx, idx] = 1.0
    return names, cos
