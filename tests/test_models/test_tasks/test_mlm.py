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
