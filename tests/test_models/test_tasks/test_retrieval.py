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


def test_loss_is_symmetric_info_nce(tiny_model, images, samples, ref):
    """By hand: image and text ``<SPE>`` outputs (each text alone), the
    scaled cosine of every image with every text; each direction is the
    cross-entropy with the paired item, halved."""
    tiny_model.eval()
    batch = samples('retrieval')
    task = tiny_model.tasks['retrieval']
    with torch.no_grad():
        losses = tiny_model(images, batch, 'loss')
        image = ref.image_spe(tiny_model, images, batch)
        text = torch.stack([ref.text_spe(tiny_model, s.text) for s in batch])
        logits = ref.scaled_cosine(image, text, task.similarity.logit_scale)
    tol = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses['retrieval.loss_i2t'],
                               ref.cross_entropy(logits, [0, 1]) / 2, **tol)
    torch.testing.assert_close(losses['retrieval.loss_t2i'],
                               ref.cross_entropy(logits.T, [0, 1]) / 2, **tol)


def test_predictions_equal_a_hand_computation(tiny_model, images, samples,
                                              ref):
    """``image_feat`` / ``text_feat`` are the normalised ``<SPE>`` outputs
    (each text as if alone, although the batch pads them), ``pred_score``
    the scaled cosine with the batch's texts in order."""
    tiny_model.eval()
    captions = [['a red circle on the left', 'a blue square'],
                ['a big green star', 'two small yellow triangles at the top']]
    batch = samples('retrieval')
    for sample, caps in zip(batch, captions):
        del sample.text
        sample.set_gt_caption(caps)
    task = tiny_model.tasks['retrieval']
    with torch.no_grad():
        out = tiny_model(images, batch, 'predict')
        image = ref.image_spe(tiny_model, images, batch)
        text = torch.stack(
            [ref.text_spe(tiny_model, c) for caps in captions for c in caps])
        scores = ref.scaled_cosine(image, text, task.similarity.logit_scale)
    tol = dict(rtol=1e-4, atol=1e-5)
    for i, sample in enumerate(out):
        torch.testing.assert_close(sample.image_feat,
                                   image[i] / image[i].norm(), **tol)
        mine = text[2 * i:2 * i + 2]
        torch.testing.assert_close(
            sample.text_feat, mine / mine.norm(dim=-1, keepdim=True), **tol)
        torch.testing.assert_close(sample.pred_score, scores[i], **tol)


def test_predict(tiny_model, images, samples):
    tiny_model.eval()
    batch = samples('retrieval')
    for sample in batch:  # test images carry all their captions
        del sample.text
    with torch.no_grad():
        out = tiny_model(images, batch, mode='predict')
    for sample in out:
        width = tiny_model.decoder.embed_dims
        assert sample.image_feat.shape == (width, )
        assert sample.text_feat.shape == (2, width)
        torch.testing.assert_close(sample.text_feat.norm(dim=-1),
                                   torch.ones(2))
        assert sample.pred_score.shape == (4, )  # the batch's 4 texts


def test_predict_text_only(tiny_model, samples):
    tiny_model.eval()
    with torch.no_grad():
        out = tiny_model(None, samples('retrieval'), mode='predict')
    assert out[0].text_feat.shape == (1, tiny_model.decoder.embed_dims)
    assert 'image_feat' not in out[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_gather_in_two_processes(tmp_path, monkeypatch):
    """Two gloo processes with half the batch each.

    ``gather=True``: after DDP's averaging, the gradient of one process on
    the whole batch; each rank's loss uses the negatives of both ranks.
    ``gather=False`` (Table 4's ablation): each rank's loss is the InfoNCE
    of its own half only.
    """
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    gather = importlib.import_module('retrieval_gather_worker')
    mp.spawn(
        gather.worker,
        args=(2, _free_port(), str(tmp_path)),
        nprocs=2,
        join=True)
    expected = gather.loss_and_grads(slice(None))
    images, texts, image_enc, text_enc, task = gather.setup()
    with torch.no_grad():
        image = F.normalize(image_enc(images), dim=-1)
        text = F.normalize(text_enc(texts), dim=-1)
        logits = image @ text.T * task.similarity.logit_scale.exp()
    local = gather.GLOBAL_BATCH // 2
    for rank in range(2):
        grads = torch.load(tmp_path / f'grads{rank}.pth')
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
        losses = torch.load(tmp_path / f'losses{rank}.pth')
        rows = slice(rank * local, (rank + 1) * local)
        own = torch.arange(local)  # each item's pair among the local ones
        labels = own + rank * local
        # with gather: this rank's rows against all 2 x 4 items
        torch.testing.assert_close(
            losses['gather']['loss_i2t'],
            F.cross_entropy(logits[rows], labels) / 2)
        torch.testing.assert_close(
            losses['gather']['loss_t2i'],
            F.cross_entropy(logits.T[rows], labels) / 2)
        # without: against this rank's 4 items only
        block = logits[rows, rows]
        torch.testing.assert_close(
            losses['local']['loss_i2t'],
            F.cross_entropy(block, own) / 2)
        torch.testing.assert_close(
            losses['local']['loss_t2i'],
            F.cross_entropy(block.T, own) / 2)


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
