# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .base import BaseTask, image_segment
from .caption_search import beam_search, greedy_search
from .captioning import (
    CachedCaptionStepper,
    CaptioningTask,
    RecomputeCaptionStepper,
)
from .class_names import ClassNames, ClassNamesMixin, normalize_class_names
from .classification import ClassificationTask
from .detection import DetectionTask
from .gather import gather_with_grad
from .instance_segmentation import InstanceSegmentationTask
from .interface import TaskModel
from .mlm import MLMTask
from .retrieval import RetrievalTask
from .similarity import ScaledCosineSimilarity
from .target_cache import TargetEmbeddingCache, weights_fingerprint

__all__ = [
    'BaseTask', 'CachedCaptionStepper', 'CaptioningTask', 'ClassNames',
    'ClassNamesMixin', 'ClassificationTask', 'DetectionTask',
    'InstanceSegmentationTask', 'MLMTask', 'RecomputeCaptionStepper',
    'RetrievalTask', 'ScaledCosineSimilarity', 'TargetEmbeddingCache',
    'TaskModel', 'beam_search', 'gather_with_grad', 'greedy_search',
    'image_segment', 'normalize_class_names', 'weights_fingerprint'
]
