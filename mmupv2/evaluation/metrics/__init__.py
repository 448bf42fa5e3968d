# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .caption_metric import CaptionMetric, caption_scores
from .class_agnostic_coco_metric import ClassAgnosticCocoMetric
from .dump_results import DUMP_FORMATS, DumpTaskResults
from .retrieval_metric import ImageTextRetrievalMetric

__all__ = [
    'CaptionMetric', 'ClassAgnosticCocoMetric', 'DUMP_FORMATS',
    'DumpTaskResults',
    'ImageTextRetrievalMetric', 'caption_scores'
]
