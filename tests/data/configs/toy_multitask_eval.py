# The toy multi-task run with per-data-set evaluation: two val / test data
# sets (classification and retrieval), each with its own evaluator, run by
# MultiTaskValLoop / MultiTaskTestLoop. Used by the engine and tool tests.
_base_ = './toy_multitask.py'


def _eval_loader(task, name, num_classes, seed):
    return dict(
        batch_size=8,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(
            type='ToyTaskDataset', num_samples=24, num_classes=num_classes,
            seed=seed, task=task, dataset_name=name))


val_dataloader = dict(
    _delete_=True,
    cls_a=_eval_loader('classification', 'cls_a', 3, 0),
    ret=_eval_loader('retrieval', 'ret', 4, 2))
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
