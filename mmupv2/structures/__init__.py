# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .upv2_data_sample import TASKS, UPv2DataSample, check_task

__all__ = ['TASKS', 'UPv2DataSample', 'check_task']
