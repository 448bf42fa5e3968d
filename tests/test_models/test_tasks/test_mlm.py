# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch


def test_loss_and_gradients_text_only(tiny_model, samples, grad_parts,
                                      shared_parts):
    tiny_model.train()
    losses = tiny_model(None, samples('mlm'), mode='loss')
    assert set(losses) == {'mlm.loss_mlm'}
    assert torch.isfinite(losses['mlm.loss_mlm'])
    losses['mlm.loss_mlm'].backward()
    # no image anywhere: neither the image encoder nor its projection
    assert grad_parts(tiny_model) == shared_parts - {
        'image_encoder', 'decoder.image_proj'
    } | {'tasks.mlm'}


def test_loss_on_masked_inputs_at_masked_positions(tiny_model, samples,
                                                   monkeypatch, ref):
    """With a hand-made masking (``mask_tokens`` replaced), the text
    encoder receives the masked ids, and the loss is the cross-entropy of
    the masked positions only, against the original tokens (each text
    encoded alone, the vocabulary token by token)."""
    tiny_model.eval()
    task = tiny_model.tasks['mlm']
    tok = tiny_model.text_encoder.tokenizer
    batch = samples('mlm')
    texts = [s.text for s in batch]
    ids, mask = tiny_model.text_encoder.tokenize(texts)
    chosen = torch.zeros_like(ids, dtype=torch.bool)
    chosen[0, 2] = chosen[1, 1] = chosen[1, 3] = True
    masked = ids.masked_fill(chosen, tok.mask_token_id)
    labels = ids.masked_fill(~chosen, -100)
    monkeypatch.setattr(task, 'mask_tokens',
                        lambda model, i, m: (masked.clone(), labels.clone()))
    with torch.no_grad():
        tiny_model.vocabulary_embeddings()  # cached: not seen by the spy
        seen = []
        encode = tiny_model.text_encoder.forward
        monkeypatch.setattr(tiny_model.text_encoder, 'forward',
                            lambda i, m: seen.append(i.clone()) or encode(
                                i, m))
        loss = tiny_model(None, batch, 'loss')['mlm.loss_mlm']
        assert len(seen) == 1 and torch.equal(seen[0], masked)
        vocab = ref.vocabulary(tiny_model)
        rows, targets = [], []
        for row, att, pick, orig in zip(masked, mask, chosen, ids):
            hidden = ref.text_hidden(tiny_model, row[att.bool()][None],
                                     'mlm_text_input')[1:]
            rows.append(hidden[pick[att.bool()]])
            targets += orig[pick].tolist()
        logits = ref.scaled_cosine(torch.cat(rows), vocab,
                                   task.similarity.logit_scale)
    assert len(targets) == 3
    torch.testing.assert_close(loss, ref.cross_entropy(logits, targets),
                               rtol=1e-4, atol=1e-5)


def test_masking(tiny_model):
    task = tiny_model.tasks['mlm']
    tok = tiny_model.text_encoder.tokenizer
    ids, mask = tiny_model.text_encoder.tokenize(
        ['a red circle on the left of a big green star', 'a square'])
    torch.manual_seed(0)
    masked, labels = task.mask_tokens(tiny_model, ids, mask)
    chosen = labels != -100
    assert bool(chosen.any(1).all())  # at least one token per text
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    # never a special token or padding
    special = torch.isin(ids, torch.tensor(tok.all_special_ids))
    assert not bool((chosen & special).any())


def test_masking_draws_as_transformers(tiny_model):
    """The masking reads only ``model.special_tokens`` and makes the draws
    of ``transformers.DataCollatorForLanguageModeling``: the same seed
    masks the same tokens the same way."""
    from transformers import DataCollatorForLanguageModeling

    from mmupv2.models.tasks import MLMTask
    task = MLMTask(mask_prob=0.5)  # every text gets a chosen token
    tok = tiny_model.text_encoder.tokenizer
    ids, mask = tiny_model.tokenize(
        ['a red circle on the left of a big green star',
         'two small yellow triangles at the top of a blue square'] * 4)
    special = torch.isin(ids, torch.tensor(tok.all_special_ids))
    collator = DataCollatorForLanguageModeling(
        tok, mlm_probability=task.mask_prob, return_tensors='pt')
    for seed in range(3):
        torch.manual_seed(seed)
        want = collator.torch_mask_tokens(ids.clone(), special.clone())
        assert bool((want[1] != -100).any(1).all())
        torch.manual_seed(seed)
        got = task.mask_tokens(tiny_model, ids, mask)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_predict_fill_mask(tiny_model, samples):
    tiny_model.eval()
    batch = samples('mlm')
    batch[0].set_text('a red <mask> on the left')
    with torch.no_grad():
        out = tiny_model(None, batch, mode='predict')
    assert out[0].pred_label.shape == (1, )
    assert isinstance(out[0].pred_text, str)
    assert out[1].pred_label.numel() == 0  # no mask token in that text


def test_bad_mask_prob():
    from mmupv2.models.tasks import MLMTask
    with pytest.raises(ValueError, match='mask_prob'):
        MLMTask(mask_prob=1.5)
