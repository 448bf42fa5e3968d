# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .log_processor import MultiTaskLogProcessor
from .multi_task_loop import (
    MultiTaskBatch,
    MultiTaskDataloaders,
    MultiTaskLoop,
    TaskEntry,
)
from .multi_task_val_loop import MultiTaskTestLoop, MultiTaskValLoop
from .task_schedule import normalise_ratios, scheduled_entry

__all__ = [
    'MultiTaskBatch', 'MultiTaskDataloaders', 'MultiTaskLogProcessor',
    'MultiTaskLoop', 'MultiTaskTestLoop', 'MultiTaskValLoop', 'TaskEntry',
    'normalise_ratios', 'scheduled_entry'
]
