# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 5 "Supervised, IN-21k": an ImageNet-21k ResNet-50 backbone; the
# neck and the proposal network start from scratch.
# Paper: detection 48.3, classification 80.1, COCO retrieval 55.1 / 41.2,
# captioning 30.2.
# No such checkpoint is published for mmpretrain's ResNet-50; put one at
# the path below (an mmpretrain classifier checkpoint, keys under
# ``backbone.``; check it with
# ``mmupv2.utils.load_backbone_checkpoint(model, path)``, which names
# every key that does not fit).
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    image_encoder=dict(
        pretrained=None,
        backbone=dict(
            init_cfg=dict(
                _delete_=True,
                type='Pretrained',
                checkpoint='checkpoints/resnet50_in21k.pth',
                prefix='backbone.'))))
