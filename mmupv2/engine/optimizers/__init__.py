# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .deepspeed_optim_wrapper import MultiTaskDeepSpeedOptimWrapper
from .mt_adamw import MTAdamW
from .multi_task_optimizer import MultiTaskOptimizer, find_multi_task_optimizer
from .optimizer_type import check_optimizer_type

__all__ = [
    'MTAdamW', 'MultiTaskDeepSpeedOptimWrapper', 'MultiTaskOptimizer',
    'check_optimizer_type', 'find_multi_task_optimizer'
]
