# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .classification import UPv2ClassificationDataset, UPv2ImageNetDataset
from .coco import UPv2CocoDataset
from .errors import AnnotationError
from .image_text_pairs import ImageTextPairDataset
from .karpathy import KarpathyCaptionDataset, KarpathyRetrievalDataset
from .task_dataset import TaskDatasetMixin
from .text_lines import TextLinesDataset
from .transforms import LimitImageSize, PackUPv2Inputs
from .vocabulary import (
    VOCABULARY_TASKS,
    DataVocabulary,
    vocabulary_from_datasets,
)

__all__ = [
    'AnnotationError', 'DataVocabulary', 'ImageTextPairDataset',
    'KarpathyCaptionDataset', 'KarpathyRetrievalDataset', 'LimitImageSize',
    'PackUPv2Inputs', 'TaskDatasetMixin', 'TextLinesDataset',
    'UPv2ClassificationDataset', 'UPv2CocoDataset', 'UPv2ImageNetDataset',
    'VOCABULARY_TASKS', 'vocabulary_from_datasets'
]
