# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .data_only_checkpoint_hook import DataOnlyCheckpointHook
from .finite_checkpoint_hook import FiniteCheckpointHook, NonFiniteWeightsError
from .random_state_hook import RandomStateHook
from .task_visualization_hook import TaskVisualizationHook
from .vocabulary_hook import VocabularyFromDataHook

__all__ = [
    'DataOnlyCheckpointHook', 'FiniteCheckpointHook', 'NonFiniteWeightsError',
    'RandomStateHook', 'TaskVisualizationHook', 'VocabularyFromDataHook'
]
