# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .attributes import ATTRIBUTE_DIMS, MOE_ATTRIBUTES
from .kv_cache import DecoderCache
from .moe_ffn import AttributeGate, ConditionalMoEFFN
from .sequence import TokenSegment
from .unified_decoder import DecoderOutput, UnifiedDecoder

__all__ = [
    'ATTRIBUTE_DIMS', 'MOE_ATTRIBUTES', 'AttributeGate', 'ConditionalMoEFFN',
    'DecoderCache', 'DecoderOutput', 'TokenSegment', 'UnifiedDecoder'
]
