# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.decoders import TokenSegment, UnifiedDecoder
from mmupv2.registry import MODELS

IMG, TXT = 'caption_image_input', 'caption_text_input'


def _decoder(moe: bool = True, **kwargs) -> UnifiedDecoder:
    torch.manual_seed(0)
    cfg = dict(embed_dims=32, num_layers=2, num_heads=4,
               feedforward_channels=64, image_in_dims=16, text_in_dims=24)
    cfg.update(kwargs)
    if not moe:
        cfg['moe_cfg'] = None
    return UnifiedDecoder(**cfg).eval()


def _inputs(batch=2, num_image=5, num_text=6):
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(batch, num_image, 16, generator=gen)
    padding = torch.zeros(batch, num_image, dtype=torch.bool)
    padding[0, -2:] = True
    text = torch.randn(batch, num_text, 24, generator=gen)
    return image, padding, text


def _segments(image, padding, text):
    return [
        TokenSegment(image, 'image', IMG, padding_mask=padding),
        TokenSegment(text, 'text', TXT, causal=True)
    ]


def test_defaults_are_bert_base_with_moe():
    with torch.device('meta'):  # shapes only, no memory or init time
        dec = UnifiedDecoder()
    assert len(dec.layers) == 6 and dec.embed_dims == 768
    layer = dec.layers[0]
    assert layer.attn.num_heads == 12
    assert len(layer.ffn.experts) == 8
    assert layer.ffn.experts[0]['fc1'].weight.shape == (3072, 768)
    assert layer.ffn.gate.top_k == 2
    assert layer.drop_path.drop_prob == 0.1
    assert dec.image_proj.in_features == 256


def test_builds_from_registry():
    dec = MODELS.build(dict(type='UnifiedDecoder', embed_dims=32,
                            num_layers=1, num_heads=2,
                            feedforward_channels=64, moe_cfg=None))
    assert not dec.with_moe


def test_shapes_and_spans():
    image, padding, text = _inputs()
    out = _decoder()(_segments(image, padding, text))
    assert out.hidden_states.shape == (2, 1 + 5 + 6, 32)
    assert out.spans == [(1, 6), (6, 12)]
    assert out.spe.shape == (2, 32)
    assert out.segment(1).shape == (2, 6, 32)
    assert out.cache is None


@pytest.mark.parametrize('moe', [True, False])
def test_kv_cache_equals_full_recompute(moe):
    dec = _decoder(moe)
    image, padding, text = _inputs()
    full = dec(_segments(image, padding, text))
    out = dec(_segments(image, padding, text[:, :2]), use_cache=True)
    steps, cache = [out.segment(1)], out.cache
    for t in range(2, 6):
        step = dec([TokenSegment(text[:, t:t + 1], 'text', TXT, causal=True)],
                   cache=cache)
        steps.append(step.hidden_states)
        cache = step.cache
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(steps, 1), full.segment(1))
    torch.testing.assert_close(out.spe, full.spe)


def test_cache_index_select_reorders_the_batch():
    dec = _decoder()
    image, padding, text = _inputs()
    cache = dec(_segments(image, padding, text[:, :3]), use_cache=True).cache
    new = TokenSegment(text[:, 3:4], 'text', TXT, causal=True)
    swapped = torch.tensor([1, 0])
    a = dec([new], cache=cache).hidden_states[swapped]
    b = dec([TokenSegment(text[swapped, 3:4], 'text', TXT, causal=True)],
            cache=cache.index_select(swapped)).hidden_states
    torch.testing.assert_close(a, b)


def test_masks_causal_text_and_padding():
    dec = _decoder()
    image, padding, text = _inputs()
    out = dec(_segments(image, padding, text))
    # a later text token changes neither earlier text nor the image
    text2 = text.clone()
    text2[:, 4] += 1
    out2 = dec(_segments(image, padding, text2))
    changed = 1 + 5 + 4  # <SPE>, 5 image tokens, text tokens 0-3
    torch.testing.assert_close(out.hidden_states[:, :changed],
                               out2.hidden_states[:, :changed])
    assert not torch.allclose(out.hidden_states[:, changed:],
                              out2.hidden_states[:, changed:])
    # padded image tokens are never attended
    image2 = image.clone()
    image2[0, -2:] = 100.0
    out3 = dec(_segments(image2, padding, text))
    torch.testing.assert_close(out.hidden_states[0, :4],
                               out3.hidden_states[0, :4])
    torch.testing.assert_close(out.hidden_states[0, 6:],
                               out3.hidden_states[0, 6:])


@pytest.mark.parametrize('causal', [True, False])
def test_text_alone_equals_text_in_a_padded_batch(causal):
    """An image of 3 tokens and a text of 3 tokens alone, and the same
    padded to 5 and 6 tokens (noise in the padding) next to a longer
    sample: the same outputs at ``<SPE>``, the image and the text."""
    dec = _decoder()
    image, padding, text = _inputs()  # image 0: tokens 3, 4 are padding
    padding[0, 2] = True
    text_attr = TXT if causal else 'text_target'

    def run(img, img_pad, txt, txt_pad):
        return dec([
            TokenSegment(img, 'image', IMG, padding_mask=img_pad),
            TokenSegment(txt, 'text', text_attr, padding_mask=txt_pad,
                         causal=causal)
        ]).hidden_states

    text_padding = torch.zeros(2, 6, dtype=torch.bool)
    text_padding[0, 3:] = True
    batched = run(image, padding, text, text_padding)
    alone = run(image[:1, :2], None, text[:1, :3], None)
    real = [0, 1, 2, 6, 7, 8]  # <SPE>, image 0-1, text 0-2
    torch.testing.assert_close(batched[0, real], alone[0])


def test_stochastic_depth_only_in_training():
    dec = _decoder(drop_path_rate=0.5, dropout=0.0, attn_drop=0.0)
    image, padding, text = _inputs()
    segs = _segments(image, padding, text)
    torch.testing.assert_close(dec(segs).hidden_states,
                               dec(segs).hidden_states)
    dec.train()
    torch.manual_seed(1)
    a = dec(segs).hidden_states
    torch.manual_seed(2)
    assert not torch.allclose(a, dec(segs).hidden_states)


def test_bad_inputs():
    dec = _decoder()
    image, padding, text = _inputs()
    with pytest.raises(KeyError, match='unknown MoE attribute'):
        dec([TokenSegment(image, 'image', 'nope')])
    with pytest.raises(ValueError, match='modality'):
        TokenSegment(image, 'audio', IMG)
    with pytest.raises(ValueError, match='padding_mask'):
        TokenSegment(image, 'image', IMG, padding_mask=padding[:, :2])
    cache = dec(_segments(image, padding, text), use_cache=True).cache
    with pytest.raises(ValueError, match='continue'):
        dec([TokenSegment(text[:, :1], 'text', 'mlm_text_input')],
            cache=cache)
    image_only = dec([TokenSegment(image, 'image', IMG)],
                     use_cache=True).cache
    with pytest.raises(ValueError, match='causal'):
        dec([TokenSegment(image[:, :1], 'image', IMG)], cache=image_only)
