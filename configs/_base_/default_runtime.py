# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Runtime of every paper config: scope, hooks, logging, distributed set-up.
default_scope = 'mmupv2'
# mmengine's Runner with every checkpoint (load_from, resume, Pretrained
# init_cfg, URLs too) read weights-only: build it with RUNNERS.build(cfg)
# (mmengine's or mmupv2's registry: the name carries its scope; see
# docs/checkpoints.md); the strategy configs set 'FlexibleRunner'
runner_type = 'mmupv2.UPv2Runner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=10000,
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))

# ``task: <entry>`` on every training line, per-entry smoothed losses
log_processor = dict(type='MultiTaskLogProcessor', window_size=50,
                     by_epoch=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

# Unmixed sampling trains one task per iteration: the other tasks' heads,
# the experts no token is routed to and (for text-only batches) the image
# encoder get no gradient; DDP must be told (see UniPerceiverV2's docstring
# for why a zero loss over them is not used instead).
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)

vis_backends = [dict(type='LocalVisBackend')]
# mmdet's: it logs the scalars and draws boxes, masks and labels for the
# inferencer and `tools/test.py`'s drawings (mmengine's plain Visualizer
# cannot draw a data sample)
visualizer = dict(
    type='mmdet.DetLocalVisualizer', vis_backends=vis_backends,
    name='visualizer')

log_level = 'INFO'
load_from = None
resume = False
