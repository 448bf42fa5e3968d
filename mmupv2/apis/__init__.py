# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Inference: :class:`UniPerceiverInferencer` runs every task of a model.

``base.py`` loads the model and runs batches; ``classification.py``,
``localization.py`` (detection, instance segmentation), ``captioning.py``
and ``retrieval.py`` are the task families; ``inferencer.py`` is the
facade with one method per task."""
from .base import TaskInferencer, UPv2BaseInferencer, canonical_task
from .captioning import CaptionInferencer
from .class_names import CLASS_NAME_TASKS, classes_from_dataset_meta
from .classification import ClassificationInferencer
from .inferencer import UniPerceiverInferencer
from .localization import LocalizationInferencer
from .model_zoo import ModelInfo, find_config, model_index
from .retrieval import RetrievalInferencer, RetrievalResult
from .task_pipelines import find_task_pipelines, resolve_task_pipelines

__all__ = [
    'CLASS_NAME_TASKS', 'CaptionInferencer', 'ClassificationInferencer',
    'LocalizationInferencer', 'ModelInfo', 'RetrievalInferencer',
    'RetrievalResult', 'TaskInferencer', 'UPv2BaseInferencer',
    'UniPerceiverInferencer', 'canonical_task', 'classes_from_dataset_meta',
    'find_config', 'find_task_pipelines', 'model_index',
    'resolve_task_pipelines'
]
