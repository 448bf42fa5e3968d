# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The ``image_tokens`` ablation (paper Table 2): the decoder receives
exactly the global tokens, the regional tokens, or both."""
import pytest
import torch

from mmupv2.models.decoders import TokenSegment
from mmupv2.registry import MODELS

TASKS = ('classification', 'retrieval', 'captioning')
#: tasks that classify the regional tokens: no 'global'
LOCALIZATION = ('detection', 'instance_segmentation')
CASES = [(t, m) for t in TASKS for m in ('all', 'global', 'regional')] + [
    (t, m) for t in LOCALIZATION for m in ('all', 'regional')
]


class _SeenImageError(Exception):
    """Stops the forward once the decoder got the image segment."""


def _image_segment_of(model, images, batch) -> TokenSegment:
    """The image segment of the first decoder call of the batch's task."""
    seen = []

    def hook(module, args):
        segments = [s for s in args[0] if s.modality == 'image']
        if segments:
            seen.extend(segments)
            raise _SeenImageError

    handle = model.decoder.register_forward_pre_hook(hook)
    try:
        with torch.no_grad(), pytest.raises(_SeenImageError):
            model(images, batch, 'tensor')
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize('task,image_tokens', CASES)
def test_decoder_receives_exactly_the_chosen_tokens(task, image_tokens,
                                                    tiny_model, images,
                                                    samples):
    tiny_model.eval()
    tiny_model.tasks[task].image_tokens = image_tokens
    batch = samples(task)
    with torch.no_grad():
        enc = tiny_model.image_encoder(images, batch)
    segment = _image_segment_of(tiny_model, images, batch)
    no_padding = torch.zeros(enc.regional_tokens.shape[:2], dtype=torch.bool)
    global_part = (enc.global_tokens, enc.global_padding_mask.bool())
    regional_part = (enc.regional_tokens, no_padding)
    chosen = {
        'all': [global_part, regional_part],
        'global': [global_part],
        'regional': [regional_part]
    }[image_tokens]
    tokens = torch.cat([part[0] for part in chosen], 1)
    padding = torch.cat([part[1] for part in chosen], 1)
    assert segment.tokens.shape == tokens.shape
    torch.testing.assert_close(segment.tokens, tokens)
    assert torch.equal(segment.padding_mask, padding)


@pytest.mark.parametrize('task,image_tokens', [
    (t, m) for t in LOCALIZATION for m in ('all', 'regional')])
def test_localization_logits_cover_every_regional_token(
        task, image_tokens, tiny_model, images, samples):
    """Regional-only detection still scores each of the O proposals."""
    tiny_model.eval()
    head = tiny_model.tasks[task]
    head.image_tokens = image_tokens
    with torch.no_grad():
        enc = tiny_model.image_encoder(images, samples(task))
        logits, _ = head(tiny_model, images, samples(task))
    assert logits.shape == (2, enc.regional_tokens.shape[1],
                            len(head.classes))


@pytest.mark.parametrize('task_type', ['DetectionTask',
                                       'InstanceSegmentationTask'])
def test_localization_refuses_global_only(task_type):
    with pytest.raises(ValueError, match="image_tokens must be 'all' or "
                       "'regional'"):
        MODELS.build(dict(type=task_type, classes=('a', 'b'),
                          image_tokens='global'))
