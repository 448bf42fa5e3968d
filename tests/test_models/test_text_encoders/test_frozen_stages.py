# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""HFTextEncoder(frozen_stages=k): the embeddings and the first k layers
get no gradient and stay in eval mode; backward stops above them."""
import pytest
import torch

from mmupv2.models import HFTextEncoder


def _encoder(shapes_root, frozen_stages):
    torch.manual_seed(0)
    return HFTextEncoder(
        tokenizer=f'{shapes_root}/tokenizer', load_pretrained=False,
        max_length=32,
        frozen_stages=frozen_stages,
        hf_config=dict(model_type='roberta', hidden_size=32,
                       num_hidden_layers=3, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=40,
                       hidden_dropout_prob=0.5))


def test_frozen_stages(shapes_root):
    enc = _encoder(shapes_root, 1).train()
    model = enc.model
    assert not model.embeddings.training
    assert not model.encoder.layer[0].training
    assert model.encoder.layer[1].training and model.encoder.layer[2].training
    ids, mask = enc.tokenize(['a red circle', 'two small blue stars'])
    enc(ids, mask).sum().backward()
    frozen = [p for m in (model.embeddings, model.encoder.layer[0])
              for p in m.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in frozen)
    trained = list(model.encoder.layer[1].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in trained)
    # frozen layers in eval mode: their part of the forward is
    # deterministic despite dropout 0.5
    emb = model.embeddings(input_ids=ids)
    assert torch.equal(emb, model.embeddings(input_ids=ids))


def test_no_frozen_stages_by_default(shapes_root):
    enc = _encoder(shapes_root, -1).train()
    assert all(p.requires_grad for p in enc.parameters())
    assert enc.model.embeddings.training


def test_frozen_stages_beyond_depth(shapes_root):
    with pytest.raises(ValueError, match='frozen_stages=4 but the model '
                       'has 3 layers'):
        _encoder(shapes_root, 4)
