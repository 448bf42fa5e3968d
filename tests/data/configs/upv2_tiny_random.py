# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The tiny Uni-Perceiver v2 (configs/_base_/models/upv2_tiny.py) with random
# weights for the inference tests (CPU, seconds): the stub image encoder in
# place of the tiny one, mmdet's data preprocessor, shorter texts and
# captions. The test pipelines are the shapes benchmark's val ones.
# Set MMUPV2_SHAPES_ROOT to a generated shapes benchmark (its tokenizer).
_base_ = ['../../../configs/_base_/models/upv2_tiny.py']
custom_imports = dict(imports=['mmupv2.testing'], allow_failed_imports=False)
default_scope = 'mmupv2'

model = dict(
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor', pad_size_divisor=16),
    image_encoder=dict(
        _delete_=True,
        type='StubImageEncoder',
        embed_dims=64,
        num_regions=6,
        num_global_pools=2),
    text_encoder=dict(
        tokenizer='{{$MMUPV2_SHAPES_ROOT:data/shapes}}/tokenizer',
        max_length=24),
    tasks=dict(captioning=dict(max_length=6)))

test_dataloader = {{_base_.shapes_val_dataloaders}}
