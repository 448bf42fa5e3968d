# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 5 "MoCo v2, IN-1k": the backbone of mmpretrain's MoCo v2 ResNet-50
# (200 epochs on ImageNet-1k, self-supervised; keys under ``backbone.``);
# the neck and the proposal network start from scratch.
# Paper: detection 48.3, classification 75.0, COCO retrieval 54.8 / 40.5,
# captioning 29.6.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    image_encoder=dict(
        pretrained=None,
        backbone=dict(
            init_cfg=dict(
                _delete_=True,
                type='Pretrained',
                checkpoint='https://download.openmmlab.com/mmselfsup/1.x/'
                'mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k/'
                'mocov2_resnet50_8xb32-coslr-200e_in1k_20220825-'
                'b6d23c86.pth',
                prefix='backbone.'))))
