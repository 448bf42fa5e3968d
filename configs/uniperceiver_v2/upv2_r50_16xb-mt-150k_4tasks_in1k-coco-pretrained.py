# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 5 "Supervised, IN-1k & COCO" ("consecutively pre-trained on
# ImageNet-1k and COCO") from public weights only: the backbone of mmdet's
# Mask R-CNN R50-FPN 1x on COCO (torchvision's ImageNet-1k ResNet-50, then
# 12 epochs of COCO detection and instance segmentation; keys under
# ``backbone.``), the neck and the proposal network from scratch. The base
# config is this row as the paper ran it: the whole image encoder, region
# proposal network included, from the proposal pre-training
# (configs/proposal_pretrain/).
# Paper: detection 49.9, classification 76.9, COCO retrieval 51.3 / 38.8,
# captioning 30.6.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    image_encoder=dict(
        pretrained=None,
        backbone=dict(
            init_cfg=dict(
                _delete_=True,
                type='Pretrained',
                checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
                'mask_rcnn/mask_rcnn_r50_fpn_1x_coco/'
                'mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth',
                prefix='backbone.'))))
