# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .hf_text_encoder import HFTextEncoder
from .special_tokens import text_boundary_ids

__all__ = ['HFTextEncoder', 'text_boundary_ids']
