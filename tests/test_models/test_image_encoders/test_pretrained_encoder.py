# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``RegionProposalImageEncoder(pretrained=...)``: the whole image encoder
(backbone + neck + proposal network) from the proposal pre-training
(a ``ClassAgnosticProposer`` checkpoint), every key checked, what was
loaded logged per part (the R50 ablations start from it)."""
import logging
from collections import OrderedDict

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from mmupv2.registry import MODELS
from mmupv2.utils import CheckpointMismatchError
from tests.test_models.tiny_shapes_model import tiny_model_cfg

PARTS = ('backbone', 'neck', 'proposal_network')


@pytest.fixture(scope='module')
def proposer(encoder_config):
    """A tiny class-agnostic proposer trained by one step, as the proposal
    pre-training leaves it."""
    torch.manual_seed(3)
    model = MODELS.build(dict(type='ClassAgnosticProposer',
                              image_encoder=encoder_config('tiny')))
    model.init_weights()
    with torch.no_grad():  # differ from any fresh initialisation
        for param in model.parameters():
            param.add_(0.01)
    return model


@pytest.fixture(scope='module')
def proposer_checkpoint(proposer, tmp_path_factory):
    """An mmengine-style checkpoint of the proposer (``image_encoder.*``
    keys, with meta, as the Runner saves them)."""
    path = tmp_path_factory.mktemp('proposer') / 'epoch_12.pth'
    torch.save(dict(meta=dict(epoch=12, seed=0),
                    state_dict=proposer.state_dict()), path)
    return str(path)


def _state(module, part):
    return {k: v for k, v in module.state_dict().items()
            if k.startswith(part + '.')}


def _build(encoder_config, **options):
    torch.manual_seed(0)
    cfg = encoder_config('tiny')
    cfg.update(options)
    return MODELS.build(cfg)


def test_loads_the_proposal_parts_and_keeps_the_rest(
        encoder_config, proposer, proposer_checkpoint):
    fresh = _build(encoder_config)
    fresh.init_weights()
    encoder = _build(encoder_config, pretrained=proposer_checkpoint)
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        encoder.init_weights()
    finally:
        logger.removeHandler(handler)

    trained = proposer.image_encoder
    for part in PARTS:
        for key, value in _state(trained, part).items():
            assert torch.equal(encoder.state_dict()[key], value), key
    # the fusion and the global pools are not trained by the pre-training:
    # they keep the encoder's own initialisation
    for part in ('fusion', 'global_tokens'):
        for key, value in _state(fresh, part).items():
            assert torch.equal(encoder.state_dict()[key], value), key
    (message, ) = [r.getMessage() for r in records
                   if 'RegionProposalImageEncoder: loaded' in r.getMessage()]
    counts = {p: len(_state(trained, p)) for p in PARTS}
    assert (f'loaded {sum(counts.values())} tensors of '
            f'{proposer_checkpoint} [image_encoder.]') in message
    for part, count in counts.items():
        assert f'{part} {count}' in message
    assert message.endswith(
        'kept their initialisation: fusion, global_tokens')


def test_a_whole_model_loads_it_through_init_weights(
        shapes_root, proposer, proposer_checkpoint):
    """``UniPerceiverV2.init_weights`` (what the Runner calls before
    training) reaches the encoder's loading after every other init."""
    cfg = tiny_model_cfg(
        image_encoder=dict(pretrained=proposer_checkpoint,
                           backbone=dict(init_cfg=None)),
        text_encoder=dict(tokenizer=f'{shapes_root}/tokenizer',
                          hf_config=dict(hidden_size=64)))
    with DefaultScope.overwrite_default_scope('mmupv2'):
        model = MODELS.build(cfg)
    model.init_weights()
    for part in PARTS:
        for key, value in _state(proposer.image_encoder, part).items():
            assert torch.equal(
                model.image_encoder.state_dict()[key], value), key


def test_a_plain_encoder_state_dict_loads_too(encoder_config, proposer,
                                              tmp_path):
    path = tmp_path / 'encoder.pth'
    torch.save(proposer.image_encoder.state_dict(), path)
    encoder = _build(encoder_config, pretrained=str(path))
    report = encoder.load_pretrained(str(path))
    assert report.source.endswith('[no prefix]')
    expected = {k: v for p in PARTS
                for k, v in _state(proposer.image_encoder, p).items()}
    assert report.num_loaded == len(expected)
    for key, value in expected.items():
        assert torch.equal(encoder.state_dict()[key], value), key


def test_a_missing_key_is_named(encoder_config, proposer, tmp_path):
    state = OrderedDict(proposer.state_dict())
    dropped = next(k for k in state
                   if k.startswith('image_encoder.proposal_network.'))
    del state[dropped]
    path = tmp_path / 'broken.pth'
    torch.save(dict(state_dict=state), path)
    encoder = _build(encoder_config, pretrained=str(path))
    with pytest.raises(CheckpointMismatchError) as error:
        encoder.init_weights()
    assert dropped[len('image_encoder.'):] in str(error.value)
    assert str(path) in str(error.value)


def test_a_missing_file_says_how_to_make_it(encoder_config, tmp_path):
    path = str(tmp_path / 'work_dirs' / 'epoch_12.pth')
    encoder = _build(encoder_config, pretrained=path)
    with pytest.raises(FileNotFoundError,
                       match='configs/proposal_pretrain/') as error:
        encoder.init_weights()
    assert path in str(error.value)


def test_unknown_parts_are_refused(encoder_config):
    with pytest.raises(ValueError, match="pretrained_parts \\['decoder'\\]"):
        _build(encoder_config, pretrained_parts=('backbone', 'decoder'))
