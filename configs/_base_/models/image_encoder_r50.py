# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# f_image with a ResNet-50 backbone (paper Sec. 4.1, Appendix A-B, Table 7):
# 4 backbone scales -> d = 256, Mask-DINO-style binary proposal network with
# 300 queries, O = 200 regional tokens, M' = 10 global attention pools.
# The backbone is ImageNet-1k pre-trained (torchvision weights, loaded by
# mmengine's ``init_weights``); tests and benchmarks drop ``init_cfg``.
image_encoder = dict(
    type='RegionProposalImageEncoder',
    backbone=dict(
        type='mmpretrain.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='mmdet.ChannelMapper',
        in_channels=[256, 512, 1024, 2048],
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=5),
    proposal_network=dict(
        type='BinaryMaskDINO',
        embed_dims=256,  # hidden_dim
        num_levels=4,
        num_queries=300,  # num_queries (R50)
        num_encoder_layers=6,  # enc_layers
        num_decoder_layers=6,  # dec_layers
        num_heads=8,  # nheads
        encoder_points=4,  # enc_n_points
        decoder_points=4,  # dec_n_points
        feedforward_channels=2048,  # dim_feedforward
        dropout=0.0,  # dropout
        dn_cfg=dict(
            label_noise_scale=0.5,  # dn_label_noise_ratio
            box_noise_scale=1.0,  # dn_box_noise_scale
            group_cfg=dict(dynamic=True, num_groups=None,
                           num_dn_queries=100))),
    # Table 7's matching costs and loss weights (cls 2, L1 5, GIoU 2, mask
    # 5, dice 5), 112 x 112 mask points and Mask2Former's importance
    # sampling: the criterion's defaults, defined there once
    criterion=dict(type='BinaryMaskDINOCriterion'),
    num_regional_tokens=200,  # topk_queries
    num_global_pools=10,
    mask_pool_size=28)

# The normalisation of ImageNet-trained backbones (torchvision's and
# mmpretrain's ResNet / Swin weights): ImageNet's RGB mean / std on 0-255
# pixels. A model config takes it as
# ``data_preprocessor={{_base_.imagenet_data_preprocessor}}``.
imagenet_data_preprocessor = dict(
    type='UPv2DataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)
