# COCO 2017 detection + instance segmentation (data/coco: train2017/,
# val2017/, annotations/instances_{train,val}2017.json). One COCO entry
# trains both tasks (paper Table 8: batch 1 per GPU).
_base_ = ['./pipelines.py']
coco_root = 'data/coco/'

coco_train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='UPv2CocoDataset',
        task='instance_segmentation',
        dataset_name='coco',
        data_root=coco_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.det_train_pipeline}}))
coco_val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='UPv2CocoDataset',
        task='instance_segmentation',
        dataset_name='coco',
        data_root=coco_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline={{_base_.det_test_pipeline}}))
coco_val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=coco_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    prefix='detection')
