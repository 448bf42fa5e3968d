# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Uni-Perceiver-v2 LARGE (paper Sec. 5.2, 5.4, Table 6): the Swin-B recipe
# (every task and data set of Table 8, 200k iterations, lr x0.1 at 160k)
# with a Swin-L backbone, on 64 GPUs.
#
# The paper's Swin-L is ImageNet-21k pre-trained and then trained for
# detection on Objects365; no such checkpoint is published in mmpretrain's
# format. The default is mmpretrain's ImageNet-21k Swin-L at 384 (also
# fine-tuned on IN-1k); point ``checkpoint`` at an Objects365 backbone (its
# keys under ``backbone.``) to follow the paper (docs/model_zoo.md).
from mmengine import Config

_base_ = ['./upv2_swin-b_32xb-mt-200k_table8.py']

_swin_l = Config.fromfile(
    '{{ fileDirname }}/../_base_/models/uniperceiver_v2_swin-l.py'
).model.image_encoder
_swin_l.backbone.init_cfg = dict(
    type='Pretrained',
    checkpoint='https://download.openmmlab.com/mmclassification/v0/'
    'swin-transformer/convert/'
    'swin_large_patch4_window12_384_22kto1k-0a40944b.pth',
    prefix='backbone.')

image_encoder = dict(_delete_=True, **_swin_l)
model = dict(image_encoder=dict(_delete_=True, **_swin_l))

del Config, _swin_l
