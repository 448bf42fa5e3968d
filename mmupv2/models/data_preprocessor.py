# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Batches of every task, including text-only ones, for the model."""
from mmdet.models.data_preprocessors import DetDataPreprocessor

from mmupv2.registry import MODELS


@MODELS.register_module()
class UPv2DataPreprocessor(DetDataPreprocessor):
    """mmdet's ``DetDataPreprocessor`` that also passes text-only batches.

    Image batches (every task but MLM) are normalised, padded and stacked by
    ``DetDataPreprocessor`` (``inputs`` (B, 3, H, W) float; the samples get
    ``batch_input_shape`` and ``pad_shape``). A text-only batch (MLM, the
    text side of retrieval) has no ``inputs``: its samples are moved to the
    device and ``inputs`` is ``None``, which ``UniPerceiverV2`` expects.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        if data.get('inputs') is None:
            data = self.cast_data(data)
            return dict(inputs=None,
                        data_samples=data.get('data_samples'))
        return super().forward(data, training)
