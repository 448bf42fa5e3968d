# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .hf_text_encoder import HFTextEncoder

__all__ = ['HFTextEncoder']
