# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .hf_text_encoder import HFTextEncoder
from .outputs import TextFeatures
from .special_tokens import (
    SpecialTokens,
    special_tokens_of,
    text_boundary_ids,
)

__all__ = [
    'HFTextEncoder', 'SpecialTokens', 'TextFeatures', 'special_tokens_of',
    'text_boundary_ids'
]
