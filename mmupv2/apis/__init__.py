# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Inference: :class:`UniPerceiverInferencer` runs every task of a model."""
from .class_names import CLASS_NAME_TASKS, classes_from_dataset_meta
from .inferencer import (
    RetrievalResult,
    UniPerceiverInferencer,
    canonical_task,
    find_config,
)
from .model_zoo import ModelInfo, model_index
from .task_pipelines import find_task_pipelines, resolve_task_pipelines

__all__ = [
    'CLASS_NAME_TASKS', 'ModelInfo', 'RetrievalResult',
    'UniPerceiverInferencer', 'canonical_task', 'classes_from_dataset_meta',
    'find_config', 'find_task_pipelines', 'model_index',
    'resolve_task_pipelines'
]
