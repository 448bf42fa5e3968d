# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 5 "CLIP, CLIP data": the image tower of OpenAI CLIP's ResNet-50
# (``CLIPModifiedResNet``: 3-conv stem, anti-aliased strides; its attention
# pool is not used) instead of the COCO-trained image encoder, with CLIP's
# image mean / std; the neck and the proposal network start from scratch.
# Paper: detection 47.2, classification 73.8, COCO retrieval 55.3 / 41.3,
# captioning 32.0.
# Convert OpenAI's RN50.pt (the file ``clip.load('RN50')`` downloads) once:
#   python tools/model_converters/clip_to_mmupv2.py RN50.pt \
#       checkpoints/clip_rn50_backbone.pth
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    # CLIP's normalisation (RGB, 0-255 pixels), as CLIP was trained with it
    data_preprocessor=dict(
        mean=[255 * m for m in (0.48145466, 0.4578275, 0.40821073)],
        std=[255 * s for s in (0.26862954, 0.26130258, 0.27577711)]),
    image_encoder=dict(
        pretrained=None,
        backbone=dict(
            _delete_=True,
            type='CLIPModifiedResNet',
            layers=(3, 4, 6, 3),
            width=64,
            out_indices=(0, 1, 2, 3),
            # the policy of every R50 config: stem + layer1 frozen, BN
            # statistics and affine parameters fixed
            frozen_stages=1,
            norm_cfg=dict(type='BN', requires_grad=False),
            norm_eval=True,
            init_cfg=dict(
                type='Pretrained',
                checkpoint='checkpoints/clip_rn50_backbone.pth'))))
