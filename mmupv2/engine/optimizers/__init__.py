# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .mt_adamw import MTAdamW
from .optimizer_type import check_optimizer_type

__all__ = ['MTAdamW', 'check_optimizer_type']
