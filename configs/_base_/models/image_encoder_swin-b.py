# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# f_image with a Swin-B backbone: the ResNet-50 setting with 900 queries
# (Appendix B). The paper's Swin-B is ImageNet-21k pre-trained; set
# ``image_encoder.backbone.init_cfg`` to an mmpretrain Swin-B checkpoint
# (e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).
_base_ = ['./image_encoder_r50.py']

image_encoder = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='base',
        img_size=384,
        window_size=12,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        pad_small_map=True,  # maps smaller than a window (small images)
        init_cfg=None),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    proposal_network=dict(num_queries=900))
