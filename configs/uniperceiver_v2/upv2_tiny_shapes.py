# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The demo model (`make demo`): a tiny Uni-Perceiver v2 trained from scratch
# on the built-in shapes benchmark, on a CPU, with every task of the paper:
# unmixed sampling, MT-AdamW. Not a paper setting: quarter-width ResNet-18,
# d = 64 proposal network (2 + 2 layers), a 2-layer RoBERTa built from a
# config with the benchmark's BPE tokenizer, a 2-layer MoE decoder of
# width 128.
_base_ = [
    '../_base_/datasets/shapes.py',
    '../_base_/models/image_encoder_tiny.py',
]
default_scope = 'mmupv2'
data_root = 'data/shapes/'
classes = ('circle', 'square', 'triangle', 'diamond', 'star', 'cross',
           'ring')

model = dict(
    type='UniPerceiverV2',
    data_preprocessor=dict(
        type='UPv2DataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    image_encoder={{_base_.image_encoder}},
    text_encoder=dict(
        type='HFTextEncoder',
        tokenizer=data_root + 'tokenizer',
        load_pretrained=False,
        max_length=40,
        hf_config=dict(
            model_type='roberta',
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=256,
            max_position_embeddings=48)),
    decoder=dict(
        type='UnifiedDecoder',
        embed_dims=128,
        num_layers=2,
        num_heads=4,
        feedforward_channels=256,
        image_in_dims=64,
        drop_path_rate=0.0,
        dropout=0.0,
        attn_drop=0.0),
    tasks=dict(
        classification=dict(type='ClassificationTask', classes=classes),
        detection=dict(type='DetectionTask', classes=classes),
        instance_segmentation=dict(
            type='InstanceSegmentationTask', classes=classes),
        captioning=dict(type='CaptioningTask', beam_size=2, max_length=24),
        retrieval=dict(type='RetrievalTask'),
        mlm=dict(type='MLMTask')),
    checkpoint_targets=False)
# acts only with model.vocabulary='data' (the captioning / MLM targets from
# the training texts, docs/tasks.md); the tiny model keeps the paper's 'full'
custom_hooks = [dict(type='VocabularyFromDataHook')]

# sampling ratio s_k and loss weight w_k per entry (Table 8's shares,
# detection and instance segmentation as two entries)
train_dataloader = dict(
    classification=dict(
        sampling_ratio=0.15, loss_weight=1.0,
        dataloader={{_base_.shapes_train_dataloaders.classification}}),
    detection=dict(
        sampling_ratio=0.15, loss_weight=1.0,
        dataloader={{_base_.shapes_train_dataloaders.detection}}),
    instance_segmentation=dict(
        sampling_ratio=0.15, loss_weight=1.0,
        dataloader={{_base_.shapes_train_dataloaders.instance_segmentation}}),
    captioning=dict(
        sampling_ratio=0.25, loss_weight=1.0,
        dataloader={{_base_.shapes_train_dataloaders.captioning}}),
    retrieval=dict(
        sampling_ratio=0.2, loss_weight=1.0,
        dataloader={{_base_.shapes_train_dataloaders.retrieval}}),
    mlm=dict(
        sampling_ratio=0.1, loss_weight=1.0,
        dataloader={{_base_.shapes_train_dataloaders.mlm}}))
train_cfg = dict(
    type='MultiTaskLoop', sampling='unmixed', max_iters=1000,
    val_interval=100000)
val_dataloader = {{_base_.shapes_val_dataloaders}}
val_evaluator = {{_base_.shapes_val_evaluators}}
val_cfg = dict(type='MultiTaskValLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(type='MultiTaskTestLoop')

# The Transformers (proposal network, text encoder, decoder) at 5e-4: at
# 1e-3 or more the decoder's residual stream grows ~1000x within 150
# iterations and every task's <SPE> output becomes input-independent (all
# similarity logits equal, losses stuck at log(#targets)). The from-scratch
# CNN (backbone + neck) learns shapes too slowly at that rate: 4x.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='MTAdamW', lr=5e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'image_encoder.backbone': dict(lr_mult=4.0),
        'image_encoder.neck': dict(lr_mult=4.0)
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=1000,
         eta_min=1e-5),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=200, by_epoch=False,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(type='MultiTaskLogProcessor', by_epoch=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)
randomness = dict(seed=0)
log_level = 'INFO'
load_from = None
resume = False
