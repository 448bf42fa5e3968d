# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.text_encoders import HFTextEncoder
from mmupv2.registry import MODELS

SMALL = dict(model_type='roberta', hidden_size=32, num_hidden_layers=1,
             num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=40)


@pytest.fixture
def tokenizer_dir(shapes_root) -> str:
    return f'{shapes_root}/tokenizer'


@pytest.fixture
def encoder(tokenizer_dir) -> HFTextEncoder:
    torch.manual_seed(0)
    return HFTextEncoder(
        tokenizer=tokenizer_dir, load_pretrained=False, hf_config=SMALL,
        max_length=16).eval()


def test_small_roberta_from_config(encoder):
    from transformers import RobertaModel, RobertaTokenizerFast
    assert isinstance(encoder.model, RobertaModel)
    assert isinstance(encoder.tokenizer, RobertaTokenizerFast)
    # vocabulary and special ids follow the tokenizer
    assert encoder.model.config.vocab_size == len(encoder.tokenizer)
    assert encoder.model.config.pad_token_id == encoder.tokenizer.pad_token_id
    assert encoder.embed_dims == 32 and encoder.model.pooler is None


def test_tokenize_and_encode(encoder):
    ids, mask = encoder.tokenize(['a red circle', 'a big blue square'])
    assert ids.shape == mask.shape and ids.shape[0] == 2
    assert ids[0, 0] == encoder.tokenizer.bos_token_id
    assert mask[0].sum() < mask[1].sum()
    assert encoder(ids, mask).shape == (*ids.shape, 32)
    long_ids, _ = encoder.tokenize(['circle ' * 50])
    assert long_ids.shape[1] == 16
    with pytest.raises(TypeError, match='list of str'):
        encoder.tokenize('a red circle')


def test_text_alone_equals_text_in_a_padded_batch(encoder):
    """Padding is masked: a short text's features do not change when a
    longer text pads it in a batch."""
    short, longer = 'a red circle', 'a big blue square on the left'
    ids, mask = encoder.tokenize([short, longer])
    length = int(mask[0].sum())
    assert length < ids.shape[1]  # the short text is padded
    alone_ids, alone_mask = encoder.tokenize([short])
    with torch.no_grad():
        batched = encoder(ids, mask)
        alone = encoder(alone_ids, alone_mask)
    torch.testing.assert_close(batched[0, :length], alone[0],
                               rtol=1e-4, atol=1e-5)


def test_embed_continues_positions(encoder):
    ids, _ = encoder.tokenize(['a red circle on the left'])
    full = encoder.embed(ids)
    steps = [encoder.embed(ids[:, t:t + 1], past_length=t)
             for t in range(ids.shape[1])]
    torch.testing.assert_close(torch.cat(steps, 1), full)


def _save(tmp_path, tokenizer_dir, with_weights: bool) -> str:
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = AutoConfig.for_model(**SMALL, vocab_size=len(tok),
                                  pad_token_id=tok.pad_token_id)
    out = tmp_path / 'model'
    tok.save_pretrained(out)
    if with_weights:
        torch.manual_seed(1)
        AutoModel.from_config(config).save_pretrained(out)
    else:
        config.save_pretrained(out)
    return str(out)


def test_load_pretrained_weights(tmp_path, tokenizer_dir):
    path = _save(tmp_path, tokenizer_dir, with_weights=True)
    from transformers import AutoModel
    saved = AutoModel.from_pretrained(path).state_dict()
    enc = MODELS.build(
        dict(type='HFTextEncoder', name_or_path=path, max_length=16))
    enc.init_weights()  # mmengine's init must not overwrite the weights
    for key, value in enc.model.state_dict().items():
        torch.testing.assert_close(value, saved[key])
    random = HFTextEncoder(path, load_pretrained=False, max_length=16)
    assert not torch.equal(random.model.embeddings.word_embeddings.weight,
                           saved['embeddings.word_embeddings.weight'])


def test_clear_error_without_weights(tmp_path, tokenizer_dir):
    path = _save(tmp_path, tokenizer_dir, with_weights=False)
    with pytest.raises(FileNotFoundError, match='holds no weights'):
        HFTextEncoder(path, max_length=16)
    assert HFTextEncoder(
        path, load_pretrained=False, max_length=16).embed_dims == 32


@pytest.mark.parametrize('load_pretrained', [True, False])
def test_offline_by_default(tmp_path, tokenizer_dir, monkeypatch,
                            load_pretrained):
    """Every ``from_pretrained`` (tokenizer, weights or config) is told
    ``local_files_only=True`` unless the config asks for the Hub."""
    import transformers
    path = _save(tmp_path, tokenizer_dir, with_weights=load_pretrained)
    calls = []
    for name in ('AutoTokenizer', 'AutoModel', 'AutoConfig'):
        cls = getattr(transformers, name)
        real = cls.from_pretrained

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append((_name, kwargs.get('local_files_only')))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, 'from_pretrained', spy)
    HFTextEncoder(path, load_pretrained=load_pretrained, max_length=16)
    loader = 'AutoModel' if load_pretrained else 'AutoConfig'
    assert ('AutoTokenizer', True) in calls and (loader, True) in calls
    assert all(offline is True for _, offline in calls), calls
    calls.clear()
    HFTextEncoder(path, load_pretrained=load_pretrained, max_length=16,
                  local_files_only=False)
    assert calls and all(offline is False for _, offline in calls), calls


def test_bad_configs(tokenizer_dir):
    with pytest.raises(ValueError, match='load_pretrained=False'):
        HFTextEncoder(tokenizer=tokenizer_dir, hf_config=SMALL)
    with pytest.raises(KeyError, match='model_type'):
        HFTextEncoder(tokenizer=tokenizer_dir, load_pretrained=False,
                      hf_config=dict(hidden_size=32))
    with pytest.raises(ValueError, match='embeddings'):
        HFTextEncoder(tokenizer=tokenizer_dir, load_pretrained=False,
                      hf_config=dict(SMALL, vocab_size=10))
    with pytest.raises(ValueError, match='max_length'):
        HFTextEncoder(tokenizer=tokenizer_dir, load_pretrained=False,
                      hf_config=SMALL, max_length=64)


def test_missing_tokenizer_folder_names_it(tmp_path, monkeypatch):
    """Data not generated, or another working directory: the error names
    the folder and says what to do, not Hugging Face's "Repo id must be in
    the form ..."."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        HFTextEncoder(tokenizer='data/shapes/tokenizer',
                      load_pretrained=False, hf_config=SMALL)
    message = str(info.value)
    assert "tokenizer folder 'data/shapes/tokenizer' does not exist" in message
    assert str(tmp_path) in message  # the working directory it looked in
    assert 'generate_shapes.py' in message and 'repository root' in message
    with pytest.raises(FileNotFoundError, match='neither a local folder'):
        HFTextEncoder('no-such-model-anywhere', max_length=16)
