# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .formatting import PackUPv2Inputs

__all__ = ['PackUPv2Inputs']
