# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import importlib
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from mmupv2.models.tasks import RetrievalTask


def test_loss_and_gradients(tiny_model, images, samples, grad_parts,
                            shared_parts):
    tiny_model.train()
    losses = tiny_model(images, samples('retrieval'), mode='loss')
    assert set(losses) == {'retrieval.loss_i2t', 'retrieval.loss_t2i'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert grad_parts(tiny_model) == shared_parts | {'tasks.retrieval'}


def test_predict(tiny_model, images, samples):
    tiny_model.eval()
    batch = samples('retrieval')
    for sample in batch:  # test images carry all their captions
        del sample.text
    with torch.no_grad():
        out = tiny_model(images, batch, mode='predict')
    for sample in out:
        assert sample.image_feat.shape == (64, )
        assert sample.text_feat.shape == (2, 64)
        torch.testing.assert_close(sample.text_feat.norm(dim=-1),
                                   torch.ones(2))
        assert sample.pred_score.shape == (4, )  # the batch's 4 texts


def test_predict_text_only(tiny_model, samples):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(None, samples('retrieval'), mode='predict')
    assert out[0].text_feat.shape == (1, 64)
    assert 'image_feat' not in out[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_gather_gradient_matches_single_process(tmp_path, monkeypatch):
    """Two gloo processes with half the batch each give, after DDP's
    averaging, the gradient of one process on the whole batch."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    gather = importlib.import_module('retrieval_gather_worker')
    mp.spawn(
        gather.worker,
        args=(2, _free_port(), str(tmp_path)),
        nprocs=2,
        join=True)
    expected = gather.loss_and_grads(slice(None))
    for rank in range(2):
        grads = torch.load(tmp_path / f'grads{rank}.pth')
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_without_gather_negatives_are_local():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(8, 4), dim=-1)
    text = F.normalize(torch.randn(8, 4), dim=-1)
    task = RetrievalTask(gather=False)
    logits = task.similarity(image, text)
    labels = torch.arange(8)
    losses = task.contrastive_loss(image, text)
    torch.testing.assert_close(
        losses['loss_i2t'], F.cross_entropy(logits, labels) / 2)
    torch.testing.assert_close(
        losses['loss_t2i'], F.cross_entropy(logits.t(), labels) / 2)


def test_needs_text(tiny_model, images, samples):
    batch = samples('retrieval')
    for sample in batch:
        del sample.text
        del sample.gt_caption
    with pytest.raises(KeyError, match='text'):
        tiny_model(images, batch, mode='loss')
