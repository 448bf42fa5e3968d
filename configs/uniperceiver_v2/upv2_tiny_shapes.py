# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The demo model (`make demo`): a tiny Uni-Perceiver v2 trained from scratch
# on the built-in shapes benchmark, on a CPU, with every task of the paper:
# unmixed sampling, MT-AdamW. Not a paper setting: quarter-width ResNet-18,
# d = 64 proposal network (2 + 2 layers), a 2-layer RoBERTa built from a
# config with the benchmark's BPE tokenizer, a 2-layer MoE decoder of
# width 128 (configs/_base_/models/upv2_tiny.py, which the tests build too).
_base_ = [
    '../_base_/shapes_cpu_runtime.py',
    '../_base_/models/upv2_tiny.py',
]

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
train_cfg = dict(val_interval=100000)  # 1000 iterations, no validation
val_dataloader = {{_base_.shapes_val_dataloaders}}
val_evaluator = {{_base_.shapes_val_evaluators}}
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# The Transformers (proposal network, text encoder, decoder) at 5e-4: at
# 1e-3 or more the decoder's residual stream grows ~1000x within 150
# iterations and every task's <SPE> output becomes input-independent (all
# similarity logits equal, losses stuck at log(#targets)). The from-scratch
# CNN (backbone + neck) learns shapes too slowly at that rate: 4x.
optim_wrapper = dict(
    optimizer=dict(lr=5e-4),
    paramwise_cfg=dict(custom_keys={
        'image_encoder.backbone': dict(lr_mult=4.0),
        'image_encoder.neck': dict(lr_mult=4.0)
    }))

default_hooks = dict(checkpoint=dict(interval=200, max_keep_ckpts=2))
log_processor = dict(window_size=10)  # a short run: mmengine's default
