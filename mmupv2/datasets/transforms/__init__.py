# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .formatting import PackUPv2Inputs
from .resize import LimitImageSize

__all__ = ['LimitImageSize', 'PackUPv2Inputs']
