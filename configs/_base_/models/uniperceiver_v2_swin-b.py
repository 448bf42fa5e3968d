# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Uni-Perceiver-v2 BASE: the ResNet-50 model with a Swin-B backbone at
# 384 x 384 (window 12) and 900 proposal queries (Appendix B). The configs
# set the backbone's pre-trained checkpoint (ImageNet-21k in the paper).
_base_ = ['./image_encoder_swin-b.py', './uniperceiver_v2_common.py']

model = dict(
    data_preprocessor={{_base_.imagenet_data_preprocessor}},
    image_encoder={{_base_.image_encoder}})
