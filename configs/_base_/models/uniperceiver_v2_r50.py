# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Uni-Perceiver v2 with a ResNet-50 image encoder: 4 scales -> binary
# Mask-DINO proposal network with 300 queries, O = 200 regional and M' = 10
# global tokens of width d = 256 (Appendix A-B, Table 7). The backbone is
# ImageNet-1k pre-trained (torchvision weights) unless the config says
# otherwise.
_base_ = ['./image_encoder_r50.py', './uniperceiver_v2_common.py']

model = dict(
    data_preprocessor={{_base_.imagenet_data_preprocessor}},
    image_encoder={{_base_.image_encoder}})
