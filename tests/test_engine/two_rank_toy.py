# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Two ranks against one process: the toy model trained through
``MultiTaskLoop``'s train step on a fixed plan of iterations.

Used by the sharded-training tests (FSDP, DeepSpeed ZeRO): each of two
gloo processes trains on its half of every batch; one process trains on
both halves at once (:func:`reference_weights`). Sharded training gives
every parameter a gradient (zero for a head the iteration does not use),
so the reference fills missing gradients with zeros: what is compared is
the gradient norm and the partitioning, not that known difference.
"""
import socket
import types
from typing import Callable, Dict, List

import torch
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.dataset import default_collate

from mmupv2.engine.optimizers import MTAdamW
from mmupv2.engine.runner import MultiTaskBatch, MultiTaskLoop, TaskEntry
from mmupv2.testing import ToyMultiTaskModel, ToyTaskDataset

BATCH = 4  # samples per rank
#: MT-AdamW's settings. eps is large enough to make the update depend on
#: the gradient's scale, i.e. on the norm MT-AdamW divides by (with 1e-8
#: the first Adam steps are about sign(g): a norm off by a factor moves
#: nothing, and near-zero gradient elements turn a 1e-16 difference of two
#: reduction orders into 1e-7)
OPTIM = dict(lr=1e-2, weight_decay=1e-2, eps=1e-3)
#: (sampling, entries) of each iteration; a mixed iteration holds 3 cls and
#: 1 ret samples per rank, both expected 2 (parts with s = 2/3 and 2)
PLAN = [('unmixed', ['cls']), ('unmixed', ['ret']), ('mixed', ['cls', 'ret']),
        ('unmixed', ['cls'])]
MIXED_SIZES, MIXED_EXPECTED = [3, 1], [2.0, 2.0]


class Linear64(nn.Linear):
    """A linear layer that casts its input to its weights' dtype (the toy
    model feeds float32 features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(self.weight.dtype))


def toy_model(dtype: torch.dtype = torch.float64) -> ToyMultiTaskModel:
    """The seeded toy model in ``dtype``; float64 keeps two reduction
    orders within 1e-15 of each other."""
    torch.manual_seed(0)
    model = ToyMultiTaskModel(tasks=dict(classification=3, retrieval=4))
    first = model.trunk[0]
    model.trunk[0] = Linear64(first.in_features, first.out_features)
    model.trunk[0].load_state_dict(first.state_dict())
    return model.to(dtype)


def param_groups(named_params) -> List[dict]:
    """Two groups, as paramwise_cfg's lr_mult makes them (trunk at 0.1)."""
    named = list(named_params)
    trunk = [p for n, p in named if 'trunk' in n]
    heads = [p for n, p in named if 'heads' in n]
    return [dict(params=trunk, lr=OPTIM['lr'] * 0.1),
            dict(params=heads, lr=OPTIM['lr'])]


def entries() -> Dict[str, TaskEntry]:
    """Two entries (s_k, w_k): cls (0.6, 1.0), ret (0.4, 2.0)."""
    datasets = dict(
        cls=ToyTaskDataset(num_samples=64, num_classes=3, seed=0,
                           task='classification', dataset_name='cls'),
        ret=ToyTaskDataset(num_samples=64, num_classes=4, seed=2,
                           task='retrieval', dataset_name='ret'))
    return dict(
        cls=TaskEntry('cls', 'classification', 0.6, 1.0,
                      types.SimpleNamespace(dataset=datasets['cls'])),
        ret=TaskEntry('ret', 'retrieval', 0.4, 2.0,
                      types.SimpleNamespace(dataset=datasets['ret'])))


def _batch(entry: TaskEntry, iteration: int, ranks: List[int],
           size: int) -> dict:
    """Rank r's first ``size`` samples of iteration ``it`` are samples
    ``(it * 2 + r) * BATCH + j``; ``ranks`` in order."""
    idx = [(iteration * 2 + r) * BATCH + j for r in ranks
           for j in range(size)]
    return default_collate([entry.dataloader.dataset[i % 64] for i in idx])


def multi_task_batch(iteration: int, ranks: List[int]) -> MultiTaskBatch:
    """Iteration ``iteration`` of :data:`PLAN` on ``ranks``' samples."""
    sampling, names = PLAN[iteration]
    by_name = entries()
    chosen = [by_name[n] for n in names]
    if sampling == 'unmixed':
        return MultiTaskBatch(iteration, chosen,
                              [_batch(chosen[0], iteration, ranks, BATCH)])
    return MultiTaskBatch(
        iteration, chosen,
        [_batch(e, iteration, ranks, n) for e, n in zip(chosen, MIXED_SIZES)],
        MIXED_SIZES, MIXED_EXPECTED)


def loop_of(model, optim_wrapper, sampling: str = 'unmixed') -> MultiTaskLoop:
    """A ``MultiTaskLoop`` without a Runner: ``train_step`` and
    ``setup_optimizer`` read only the runner's model and optim wrapper."""
    loop = MultiTaskLoop.__new__(MultiTaskLoop)
    loop._runner = types.SimpleNamespace(model=model,
                                         optim_wrapper=optim_wrapper)
    loop.sampling = sampling
    return loop


def train_plan(model, optim_wrapper, rank: int) -> None:
    """Run :data:`PLAN` on rank ``rank``'s samples through the loop."""
    for it, (sampling, _) in enumerate(PLAN):
        loop_of(model, optim_wrapper, sampling).train_step(
            multi_task_batch(it, ranks=[rank]))


def reference_weights(dtype: torch.dtype = torch.float64) -> dict:
    """One process, both ranks' samples, every gradient (zero-filled)."""
    model = toy_model(dtype)
    opt = MTAdamW(param_groups(model.named_parameters()), **OPTIM)
    for it in range(len(PLAN)):
        batch = multi_task_batch(it, ranks=[0, 1])
        sizes = batch.num_samples or [None]
        expected = batch.expected_samples or [None]
        last = len(batch.entries) - 1
        for i, (entry, data, n, lam) in enumerate(
                zip(batch.entries, batch.batches, sizes, expected)):
            opt.zero_grad(set_to_none=False)
            for p in model.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            data = model.data_preprocessor(data, True)
            loss, _ = model.parse_losses(model(**data, mode='loss'))
            loss.backward()
            s = entry.sampling_ratio if n is None else lam / n
            opt.set_task(s, entry.loss_weight, final=i == last)
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def spawn(worker: Callable, *args) -> dict:
    """Run ``worker(rank, port, out, *args)`` on two processes; ``out`` is
    the dict they fill."""
    out = mp.get_context('spawn').Manager().dict()
    mp.spawn(worker, args=(free_port(), out) + args, nprocs=2)
    return dict(out)


def assert_weights_equal(weights: dict, ref: dict, atol: float = 1e-6,
                         what: str = '') -> None:
    for key, value in ref.items():
        torch.testing.assert_close(weights[key], value, atol=atol, rtol=0,
                                   msg=f'{what}{key}')
