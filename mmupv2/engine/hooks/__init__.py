# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .vocabulary_hook import VocabularyFromDataHook

__all__ = ['VocabularyFromDataHook']
