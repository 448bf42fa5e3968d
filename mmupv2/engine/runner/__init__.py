# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .grad_sharding import configure_grad_sharding
from .log_processor import MultiTaskLogProcessor
from .mixed_batch_sampler import MixedBatchSampler
from .multi_task_loop import (
    MultiTaskBatch,
    MultiTaskDataloaders,
    MultiTaskLoop,
    NonFiniteLossError,
    TaskEntry,
)
from .multi_task_val_loop import MultiTaskTestLoop, MultiTaskValLoop
from .runner import UPv2Runner, WeightsOnlyLoadingMixin
from .task_schedule import (
    MixedSchedule,
    default_mixed_batch_size,
    entry_sampling_ratios,
    mixed_shares,
    normalise_ratios,
    scheduled_entry,
    unmixed_iterations,
)

__all__ = [
    'MixedBatchSampler', 'MixedSchedule', 'MultiTaskBatch',
    'MultiTaskDataloaders', 'MultiTaskLogProcessor', 'MultiTaskLoop',
    'MultiTaskTestLoop', 'MultiTaskValLoop', 'NonFiniteLossError',
    'TaskEntry', 'UPv2Runner', 'WeightsOnlyLoadingMixin',
    'configure_grad_sharding', 'default_mixed_batch_size',
    'entry_sampling_ratios', 'mixed_shares', 'normalise_ratios',
    'scheduled_entry', 'unmixed_iterations'
]
