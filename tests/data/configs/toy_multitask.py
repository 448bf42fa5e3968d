# A tiny multi-task run on the CPU: three entries of two tasks, unmixed
# sampling, MT-AdamW. Used by the engine and tool tests.
custom_imports = dict(imports=['mmupv2.testing'], allow_failed_imports=False)
default_scope = 'mmupv2'

model = dict(
    type='ToyMultiTaskModel',
    tasks=dict(classification=3, retrieval=4),
    feat_dim=8,
    hidden=16)

_toy_train_loader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
_toy_cls_a = dict(
    type='ToyTaskDataset', num_samples=48, num_classes=3, seed=0,
    task='classification', dataset_name='cls_a')

train_dataloader = dict(
    cls_a=dict(
        sampling_ratio=0.5, loss_weight=1.0,
        dataloader=dict(_toy_train_loader, dataset=_toy_cls_a)),
    cls_b=dict(
        sampling_ratio=0.2, loss_weight=0.5,
        dataloader=dict(
            _toy_train_loader, batch_size=2,
            dataset=dict(_toy_cls_a, seed=1, dataset_name='cls_b'))),
    ret=dict(
        sampling_ratio=0.3, loss_weight=2.0,
        dataloader=dict(
            _toy_train_loader,
            dataset=dict(_toy_cls_a, num_classes=4, seed=2, task='retrieval',
                         dataset_name='ret'))))
train_cfg = dict(
    type='MultiTaskLoop', sampling='unmixed', max_iters=12, val_interval=6)

val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=_toy_cls_a)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))
val_cfg = dict(type='ValLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='MTAdamW', lr=1e-2, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'trunk': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[10], gamma=0.1)
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=6, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(type='MultiTaskLogProcessor', by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=7)
log_level = 'INFO'
load_from = None
resume = False
