# The toy multi-task run with per-data-set evaluation: two val / test data
# sets (classification and retrieval), each with its own evaluator, run by
# MultiTaskValLoop / MultiTaskTestLoop. Used by the engine and tool tests.
_base_ = './toy_multitask.py'


_toy_eval_loader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))

val_dataloader = dict(
    _delete_=True,
    cls_a=dict(
        _toy_eval_loader,
        dataset=dict(
            type='ToyTaskDataset', num_samples=24, num_classes=3, seed=0,
            task='classification', dataset_name='cls_a')),
    ret=dict(
        _toy_eval_loader,
        dataset=dict(
            type='ToyTaskDataset', num_samples=24, num_classes=4, seed=2,
            task='retrieval', dataset_name='ret')))
val_evaluator = dict(
    _delete_=True,
    cls_a=dict(type='mmpretrain.Accuracy', topk=(1, )),
    ret=[
        dict(type='mmpretrain.Accuracy', topk=(1, 2)),
        dict(type='mmpretrain.SingleLabelMetric', items=('precision', ))
    ])
val_cfg = dict(type='MultiTaskValLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
test_cfg = dict(type='MultiTaskTestLoop')
