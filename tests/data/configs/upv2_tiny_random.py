# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# A tiny random-init Uni-Perceiver v2 for the inference tests (CPU,
# seconds): the stub image encoder, a 2-layer RoBERTa built from a config
# with the shapes benchmark's tokenizer, a 2-layer decoder of width 64 and
# every task head. The test pipelines are the shapes benchmark's val ones.
# Set MMUPV2_SHAPES_ROOT to a generated shapes benchmark (its tokenizer).
_base_ = ['../../../configs/_base_/datasets/shapes.py']
custom_imports = dict(imports=['mmupv2.testing'], allow_failed_imports=False)
default_scope = 'mmupv2'
classes = ('circle', 'square', 'triangle', 'diamond', 'star', 'cross',
           'ring')

model = dict(
    type='UniPerceiverV2',
    data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=16),
    image_encoder=dict(
        type='StubImageEncoder', embed_dims=32, num_regions=6,
        num_global_pools=2),
    text_encoder=dict(
        type='HFTextEncoder',
        tokenizer='{{$MMUPV2_SHAPES_ROOT:data/shapes}}/tokenizer',
        load_pretrained=False,
        max_length=24,
        hf_config=dict(
            model_type='roberta',
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=32)),
    decoder=dict(
        type='UnifiedDecoder',
        embed_dims=64,
        num_layers=2,
        num_heads=2,
        feedforward_channels=128,
        image_in_dims=32),
    tasks=dict(
        classification=dict(type='ClassificationTask', classes=classes),
        detection=dict(type='DetectionTask', classes=classes),
        instance_segmentation=dict(
            type='InstanceSegmentationTask', classes=classes),
        captioning=dict(type='CaptioningTask', beam_size=2, max_length=6),
        retrieval=dict(type='RetrievalTask'),
        mlm=dict(type='MLMTask')),
    checkpoint_targets=False)

test_dataloader = {{_base_.shapes_val_dataloaders}}
