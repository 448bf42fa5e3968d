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


def _pairs(num, dims=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(num, dims, generator=gen), dim=-1)
    text = F.normalize(torch.randn(num, dims, generator=gen), dim=-1)
    return image, text


def _soft_cross_entropy(logits, positive):
    """By hand: minus the mean log-probability of the positives, each
    row's positives sharing its target mass equally."""
    targets = positive.float() / positive.float().sum(1, keepdim=True)
    return -(targets * logits.log_softmax(1)).sum(1).mean()


def test_captions_of_one_image_are_positives_of_each_other():
    """Pairs 0 and 2 show the same image: neither is the other's
    negative (mmpretrain's ITCHead targets)."""
    image, text = _pairs(4)
    ids = torch.tensor([7, 3, 7, 5])
    task = RetrievalTask(gather=False)
    losses = task.contrastive_loss(image, text, ids)
    positive = ids[:, None] == ids[None, :]
    logits = task.similarity(image, text)
    torch.testing.assert_close(losses['loss_i2t'],
                               _soft_cross_entropy(logits, positive) / 2)
    torch.testing.assert_close(losses['loss_t2i'],
                               _soft_cross_entropy(logits.t(), positive) / 2)
    # distinct ids give the plain InfoNCE of the paper
    torch.testing.assert_close(
        task.contrastive_loss(image, text, torch.arange(4))['loss_i2t'],
        task.contrastive_loss(image, text)['loss_i2t'])


def test_queue_adds_past_pairs_as_negatives():
    """Step 2's keys are its batch and step 1's pairs (detached); a past
    pair of the same image counts as a positive."""
    task = RetrievalTask(gather=False, queue_size=8)
    image1, text1 = _pairs(4, seed=1)
    ids1 = torch.tensor([0, 1, 2, 3])
    first = task.contrastive_loss(image1, text1, ids1)
    # an empty queue adds nothing
    plain = RetrievalTask(gather=False).contrastive_loss(image1, text1, ids1)
    torch.testing.assert_close(first['loss_i2t'], plain['loss_i2t'])

    image2, text2 = _pairs(4, seed=2)
    image2.requires_grad_(True)
    ids2 = torch.tensor([9, 2, 8, 6])  # pair 1 shows step 1's image 2
    second = task.contrastive_loss(image2, text2, ids2)
    keys_text = torch.cat([text2, text1])
    keys_image = torch.cat([image2.detach(), image1])
    key_ids = torch.cat([ids2, ids1])
    positive = ids2[:, None] == key_ids[None, :]
    torch.testing.assert_close(
        second['loss_i2t'],
        _soft_cross_entropy(task.similarity(image2, keys_text), positive) / 2)
    torch.testing.assert_close(
        second['loss_t2i'],
        _soft_cross_entropy(task.similarity(text2, keys_image), positive) / 2)
    # only the current batch gets a gradient
    second['loss_t2i'].backward()
    assert image2.grad is not None and image2.grad.abs().sum() > 0


def test_queue_keeps_the_newest_pairs_and_resumes():
    """First in, first out over ``queue_size`` slots; the state dict
    carries the queue (features, ids, pointer) into a fresh task."""
    task = RetrievalTask(gather=False, queue_size=6)
    for step in range(3):  # 12 pairs through 6 slots
        image, text = _pairs(4, seed=step)
        task.contrastive_loss(image, text, torch.arange(4) + 4 * step)
    queued_image, queued_text, queued_ids = task.queue.filled()
    assert sorted(queued_ids.tolist()) == [6, 7, 8, 9, 10, 11]
    newest_image, _ = _pairs(4, seed=2)
    torch.testing.assert_close(queued_image[queued_ids >= 8], newest_image)

    resumed = RetrievalTask(gather=False, queue_size=6)
    resumed.load_state_dict(task.state_dict())
    image, text = _pairs(4, seed=5)
    ids = torch.arange(4) + 100
    torch.testing.assert_close(resumed.contrastive_loss(image, text, ids),
                               task.contrastive_loss(image, text, ids))


def test_queue_needs_image_ids():
    image, text = _pairs(4)
    task = RetrievalTask(gather=False, queue_size=8)
    with pytest.raises(KeyError, match='image_id'):
        task.contrastive_loss(image, text)
    with pytest.raises(ValueError, match='queue_size'):
        RetrievalTask(queue_size=-1)
