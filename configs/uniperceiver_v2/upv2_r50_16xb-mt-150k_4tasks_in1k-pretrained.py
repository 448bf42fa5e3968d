# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 5 "Supervised, IN-1k": the backbone starts from torchvision's
# ImageNet-1k ResNet-50 instead of the COCO-trained image encoder; the neck
# and the proposal network start from scratch.
# Paper: detection 45.7, classification 76.8, COCO retrieval 51.2 / 38.9,
# captioning 27.3.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    image_encoder=dict(
        pretrained=None,
        # the init_cfg of image_encoder_r50.py: torchvision's ResNet-50
        backbone=dict(init_cfg=dict(
            _delete_=True, **_base_.image_encoder.backbone.init_cfg))))
