# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The attribute vectors that attribute-level routing reads.

Uni-Perceiver-MoE (``uniperceiver/datasets/moe_embeddings.py``) gives every
token segment a fixed 8-dim binary attribute vector; the MoE gate sees only
this vector, never the token's content. Its table is kept as is where v1
has the same kind of segment; v2 has no video, so the third entry (v1's
never-set slot) marks the localization tasks, whose regional tokens are
new in v2 (the paper is silent on their attribute).

Entries, in order:

0. the task's input contains an image,
1. the task's input contains text (set for the vocabulary target as in v1),
2. localization task (detection / instance segmentation; new in v2),
3. always 1 (a bias),
4. the segment is image tokens,
5. the segment is text tokens,
6. the segment is a target (class names, retrieval texts, vocabulary),
7. the segment is generated text (causal captioning input).
"""
from typing import Dict, Tuple

#: Width of an attribute vector.
ATTRIBUTE_DIMS = 8

#: Named attribute vectors, one per kind of segment.
MOE_ATTRIBUTES: Dict[str, Tuple[int, ...]] = {
    # classification and retrieval image input (v1 image_classification)
    'image_input': (1, 0, 0, 1, 1, 0, 0, 0),
    # detection / instance segmentation image input (new in v2)
    'localization_image_input': (1, 0, 1, 1, 1, 0, 0, 0),
    # captioning: the image, then the causal caption prefix (v1 image_caption)
    'caption_image_input': (1, 1, 0, 1, 1, 0, 0, 0),
    'caption_text_input': (1, 1, 0, 1, 0, 1, 0, 1),
    # masked language modelling input (v1 text_mlm)
    'mlm_text_input': (0, 1, 0, 1, 0, 1, 0, 0),
    # class names and retrieval texts (v1 ImageNet1k / image_retrieval target)
    'text_target': (1, 0, 0, 1, 0, 1, 1, 0),
    # the vocabulary of captioning and MLM (v1 Vocab_Word)
    'vocab_target': (1, 1, 0, 1, 0, 1, 1, 0),
}


def attribute_names() -> Tuple[str, ...]:
    """The names of :data:`MOE_ATTRIBUTES` in table order."""
    return tuple(MOE_ATTRIBUTES)


def check_attribute(name: str) -> str:
    """Return ``name`` if it is a key of :data:`MOE_ATTRIBUTES`, else raise a
    ``KeyError`` listing the valid names."""
    if name not in MOE_ATTRIBUTES:
        raise KeyError(f'unknown MoE attribute {name!r}; expected one of '
                       f'{", ".join(MOE_ATTRIBUTES)}')
    return name
