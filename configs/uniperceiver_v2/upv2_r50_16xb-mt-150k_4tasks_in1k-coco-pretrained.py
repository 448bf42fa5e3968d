# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 5 "Supervised, IN-1k & COCO" ("consecutively pre-trained on
# ImageNet-1k and COCO"), with the backbone of mmdet's Mask R-CNN R50-FPN 1x
# on COCO (torchvision's ImageNet-1k ResNet-50, then 12 epochs of COCO
# detection and instance segmentation; keys under ``backbone.``). The base
# config is the same row with the backbone of mmdet's 4-scale DINO instead.
# Paper: detection 49.9, classification 76.9, COCO retrieval 51.3 / 38.8,
# captioning 30.6.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

# the base's init_cfg (Pretrained, keys under ``backbone.``), another file
model = dict(
    image_encoder=dict(
        backbone=dict(
            init_cfg=dict(
                checkpoint='https://download.openmmlab.com/mmdetection/v2.0/'
                'mask_rcnn/mask_rcnn_r50_fpn_1x_coco/'
                'mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'))))
