# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .mt_adamw import MTAdamW

__all__ = ['MTAdamW']
