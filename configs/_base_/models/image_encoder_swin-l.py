# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# f_image with a Swin-L backbone: the ResNet-50 setting with 900 queries
# (Appendix B). The paper's Swin-L is ImageNet-21k pre-trained and then
# trained for detection on Objects365; set
# ``image_encoder.backbone.init_cfg`` to such an mmpretrain checkpoint.
_base_ = ['./image_encoder_swin-b.py']

image_encoder = dict(
    backbone=dict(arch='large'),
    neck=dict(in_channels=[192, 384, 768, 1536]))
