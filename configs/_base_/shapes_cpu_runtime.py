# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Run-time and schedule of the demo models trained on the shapes benchmark
# on a CPU (configs/uniperceiver_v2/upv2_{tiny,lite0-minilm}_shapes.py):
# default_runtime.py with gloo, unmixed sampling over the entries and
# evaluation per data set, MT-AdamW (each config sets its learning rates),
# 50 warm-up iterations then a cosine decay to the end of the run.
_base_ = ['./default_runtime.py']

max_iters = 1000
train_cfg = dict(type='MultiTaskLoop', sampling='unmixed', max_iters=max_iters)
val_cfg = dict(type='MultiTaskValLoop')
test_cfg = dict(type='MultiTaskTestLoop')

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='MTAdamW', weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5),
]

# acts only with model.vocabulary='data' (the captioning / MLM targets from
# the training texts, docs/tasks.md); a model with the paper's 'full'
# vocabulary keeps it
custom_hooks = [dict(type='VocabularyFromDataHook')]
default_hooks = dict(logger=dict(interval=20))
# CPU training (`tools/train.py --launcher pytorch` on CPUs uses gloo)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
