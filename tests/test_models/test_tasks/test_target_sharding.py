# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Sharded target encoding (``UniPerceiverV2(shard_targets=True)``): in
distributed training each rank encodes a shard of the class names and of
the vocabulary, and the ranks gather the embeddings with their gradient."""
import importlib
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mmupv2.models.tasks.gather import shard_sizes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def sharding(shapes_root, tmp_path_factory):
    """The worker module, and the saved results of a 2-process run with
    ``shard_targets`` on and of one with it off."""
    with pytest.MonkeyPatch.context() as patch:
        # the spawned processes import the worker by this top-level name
        patch.syspath_prepend(str(Path(__file__).parent))
        worker = importlib.import_module('target_sharding_worker')
        tokenizer = f'{shapes_root}/tokenizer'
        results = {}
        for shard in (True, False):
            out = tmp_path_factory.mktemp(f'shard_{shard}')
            mp.spawn(worker.worker,
                     args=(2, _free_port(), str(out), tokenizer, shard),
                     nprocs=2, join=True)
            results[shard] = [
                torch.load(out / f'rank{r}.pth') for r in (0, 1)
            ]
        yield worker, tokenizer, results


def test_shard_sizes_split_in_order():
    assert shard_sizes(7, 2) == [4, 3]
    assert shard_sizes(7, 3) == [3, 2, 2]
    assert shard_sizes(6, 3) == [2, 2, 2]
    assert sum(shard_sizes(50265, 64)) == 50265


@pytest.mark.parametrize('task', ['classification', 'captioning'])
def test_sharded_equals_one_process(sharding, task):
    """Two gloo ranks under DDP, half of the global batch each, every rank
    encoding its shard of an odd number of targets (7 class names: 4 + 3;
    13 vocabulary targets: 7 + 6): the mean loss and every parameter's
    (averaged) gradient equal one process on the whole batch."""
    worker, tokenizer, results = sharding
    model = worker.build_model(tokenizer)
    loss, grads = worker.loss_and_grads(model, task, slice(None))
    num = worker.target_rows(model, task)
    assert num % 2 == 1
    sizes = shard_sizes(num, 2)
    assert sizes[0] != sizes[1]
    for rank, result in enumerate(results[True]):
        got = result[task]
        assert got['targets'] == num
        # each rank encoded its shard only
        assert got['encoded'] == sizes[rank]
        assert got['loss'] == pytest.approx(loss, abs=1e-6)
        assert set(got['grads']) == set(grads)
        # the text encoder and the decoder's text path get their gradient
        # from the targets (the rows other ranks computed included)
        assert any(n.startswith('text_encoder.') for n in grads)
        for name, want in grads.items():
            torch.testing.assert_close(
                got['grads'][name], want, atol=1e-6, rtol=1e-5,
                msg=lambda m, n=name: f'{task}: {n}: {m}')


def test_switched_off_every_rank_encodes_every_target(sharding):
    """``shard_targets=False``: every rank encodes the whole target set,
    and the result is the same as sharded."""
    _, _, results = sharding
    for rank in (0, 1):
        for task in ('classification', 'captioning'):
            off, on = results[False][rank][task], results[True][rank][task]
            assert off['encoded'] == off['targets']
            assert off['loss'] == pytest.approx(on['loss'], abs=1e-6)
            for name, grad in on['grads'].items():
                torch.testing.assert_close(off['grads'][name], grad,
                                           atol=1e-6, rtol=1e-5)


def test_when_targets_are_sharded(tiny_model, monkeypatch):
    """Only in training with gradient, on more than one rank, with at least
    one target per rank, and while switched on."""
    import mmupv2.models.uniperceiver_v2 as upv2
    tiny_model.train()
    assert not tiny_model.shards_targets(7)  # one process: no collective
    monkeypatch.setattr(upv2, 'get_world_size', lambda: 4)
    assert tiny_model.shards_targets(7)
    assert tiny_model.shards_targets(4)
    assert not tiny_model.shards_targets(3)  # a rank would get nothing
    with torch.no_grad():
        assert not tiny_model.shards_targets(7)
    tiny_model.shard_targets = False
    assert not tiny_model.shards_targets(7)
    tiny_model.shard_targets = True
    tiny_model.eval()  # inference: computed once and cached, per rank
    assert not tiny_model.shards_targets(7)
