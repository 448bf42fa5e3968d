# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .caption_metric import CaptionMetric, caption_scores
from .retrieval_metric import ImageTextRetrievalMetric

__all__ = ['CaptionMetric', 'ImageTextRetrievalMetric', 'caption_scores']
