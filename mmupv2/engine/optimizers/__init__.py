# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .mt_adamw import MTAdamW
from .multi_task_optimizer import MultiTaskOptimizer
from .optimizer_type import check_optimizer_type

__all__ = ['MTAdamW', 'MultiTaskOptimizer', 'check_optimizer_type']
