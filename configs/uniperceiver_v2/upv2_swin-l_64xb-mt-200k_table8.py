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
_base_ = ['./upv2_swin-b_32xb-mt-200k_table8.py']

# Swin-L instead of Swin-B: the large architecture, its stage widths into
# the neck, and its checkpoint. Also the top-level ``image_encoder`` (what
# the model files name f_image), so that it describes this model.
#
# ``with_cp``: the Swin-L blocks are gradient-checkpointed. Without it one
# ImageNet step of 28 images at 384 x 384 needs ~80 GB in fp32, more than an
# 80 GB GPU; with it ~50 GB, for ~20 % more FLOPs (the blocks' forward runs
# again in the backward; docs/benchmark.md, "Paper-scale step cost"). Set
# it to False on larger GPUs or under bf16 autocast.
image_encoder = dict(
    backbone=dict(
        arch='large',
        with_cp=True,
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'swin-transformer/convert/'
            'swin_large_patch4_window12_384_22kto1k-0a40944b.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
model = dict(image_encoder=image_encoder)
