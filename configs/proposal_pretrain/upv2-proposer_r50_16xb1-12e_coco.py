# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The proposal pre-training of the ResNet-50 ablations. The paper's
# ablation models start from "an image encoder pre-trained on COCO
# detection", "thereby all these tasks can benefit from the pre-trained
# region proposal network" (Sec. 5.3, Table 3): this config trains the
# ResNet-50 image encoder of Uni-Perceiver v2 (ImageNet-1k ResNet-50,
# neck, BinaryMaskDINO with Table 7's settings) alone, as a class-agnostic
# Mask-DINO on COCO instances (boxes and masks, one category "object"),
# with ClassAgnosticProposer. Its last checkpoint is what
# configs/uniperceiver_v2/upv2_r50_16xb-mt-150k_4tasks.py and its
# ablations load whole (backbone + neck + proposal network,
# ``model.image_encoder.pretrained``), with every key checked and a
# report of what was loaded in the log.
#
#   python tools/train.py \
#       configs/proposal_pretrain/upv2-proposer_r50_16xb1-12e_coco.py
#   -> work_dirs/upv2-proposer_r50_16xb1-12e_coco/epoch_12.pth
#
# The paper gives no schedule for it. Here: mmdet's DINO-4scale R50 "1x"
# (AdamW, lr 1e-4, backbone 0.1x, weight decay 1e-4, gradient clip 0.1,
# 12 epochs, lr x0.1 after epoch 11, 16 images per iteration) and the
# paper's COCO data pipeline and per-GPU batch (Appendix B, Table 8: one
# image per GPU). Evaluation: class-agnostic box and mask AP
# (ClassAgnosticCocoMetric): does the network find and outline objects.
_base_ = [
    '../_base_/models/image_encoder_r50.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ClassAgnosticProposer',
    data_preprocessor={{_base_.imagenet_data_preprocessor}},
    image_encoder={{_base_.image_encoder}},
    max_per_img=100)

# the COCO data of the multi-task configs, in epochs
_epoch_sampler = dict(type='DefaultSampler', shuffle=True)
train_dataloader = dict(
    _base_.coco_train_dataloader, sampler=_epoch_sampler)
val_dataloader = {{_base_.coco_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = dict(
    type='ClassAgnosticCocoMetric',
    ann_file=_base_.coco_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    prefix='proposal')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'image_encoder.backbone':
                                    dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[11], gamma=0.1)
]
# scale the lr linearly for another total batch (--auto-scale-lr)
auto_scale_lr = dict(base_batch_size=16)

default_hooks = dict(
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3,
                    save_best='proposal/bbox_mAP', rule='greater'),
    logger=dict(interval=50))
log_processor = dict(
    _delete_=True, type='LogProcessor', window_size=50, by_epoch=True)
