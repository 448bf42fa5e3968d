# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The tiny Uni-Perceiver v2 of the shapes benchmark (not a paper setting),
# trained from scratch by configs/uniperceiver_v2/upv2_tiny_shapes.py and
# built by the tests (with a stub image encoder where the test is not about
# the image):
#   f_image  the tiny encoder of image_encoder_tiny.py (quarter-width
#            ResNet-18, d = 64, 2 + 2 proposal layers, 30 queries)
#   f_text   a 2-layer RoBERTa of width 128 built from a config (random
#            weights) with the benchmark's BPE tokenizer
#   g        a 2-layer MoE decoder of width 128
#   heads    every task, over the benchmark's class names
_base_ = ['../datasets/shapes.py', './image_encoder_tiny.py']

model = dict(
    type='UniPerceiverV2',
    data_preprocessor={{_base_.imagenet_data_preprocessor}},
    image_encoder={{_base_.image_encoder}},
    text_encoder=dict(
        type='HFTextEncoder',
        tokenizer=_base_.shapes_root + 'tokenizer',
        load_pretrained=False,
        max_length=40,
        hf_config=dict(
            model_type='roberta',
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=256,
            max_position_embeddings=48)),
    decoder=dict(
        type='UnifiedDecoder',
        embed_dims=128,
        num_layers=2,
        num_heads=4,
        feedforward_channels=256,
        image_in_dims=64,
        drop_path_rate=0.0,
        dropout=0.0,
        attn_drop=0.0),
    tasks=dict(
        classification=dict(
            type='ClassificationTask', classes={{_base_.shapes_classes}}),
        detection=dict(
            type='DetectionTask', classes={{_base_.shapes_classes}}),
        instance_segmentation=dict(
            type='InstanceSegmentationTask',
            classes={{_base_.shapes_classes}}),
        captioning=dict(type='CaptioningTask', beam_size=2, max_length=24),
        retrieval=dict(type='RetrievalTask'),
        mlm=dict(type='MLMTask')),
    checkpoint_targets=False)
