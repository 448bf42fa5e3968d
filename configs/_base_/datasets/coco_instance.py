# COCO 2017 detection + instance segmentation (data/coco: train2017/,
# val2017/, annotations/instances_{train,val}2017.json). One COCO entry
# trains both tasks (paper Table 8: batch 1 per GPU); the ablations
# (Sec. 5.3) train and evaluate detection alone on the same data
# (``coco_det_*``).
#
# Pipelines (paper Appendix B): random resize (shorter side 200-1800,
# longer <= 2400), crop 1600x1600; test: shorter 1400, longer <= 1600.
coco_root = 'data/coco/'

det_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.RandomChoiceResize',
         scales=[(2400, s) for s in range(200, 1801, 32)],
         keep_ratio=True),
    dict(type='mmdet.RandomCrop', crop_type='absolute',
         crop_size=(1600, 1600), recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackUPv2Inputs'),
]
det_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(1600, 1400), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackUPv2Inputs'),
]

_coco_train_loader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    collate_fn=dict(type='pseudo_collate'))
_coco_val_loader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'))
_coco_train = dict(
    type='UPv2CocoDataset',
    dataset_name='coco',
    data_root=coco_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img='train2017/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=det_train_pipeline)
_coco_val = dict(
    type='UPv2CocoDataset',
    dataset_name='coco',
    data_root=coco_root,
    ann_file='annotations/instances_val2017.json',
    data_prefix=dict(img='val2017/'),
    test_mode=True,
    pipeline=det_test_pipeline)

coco_train_dataloader = dict(
    _coco_train_loader,
    dataset=dict(_coco_train, task='instance_segmentation'))
coco_val_dataloader = dict(
    _coco_val_loader, dataset=dict(_coco_val, task='instance_segmentation'))
coco_val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=coco_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    prefix='detection')

coco_det_train_dataloader = dict(
    _coco_train_loader, dataset=dict(_coco_train, task='detection'))
coco_det_val_dataloader = dict(
    _coco_val_loader, dataset=dict(_coco_val, task='detection'))
coco_det_val_evaluator = dict(coco_val_evaluator, metric='bbox')

# MultiTaskLoop entries (Table 8: s_k 0.25, w_k 1.0): COCO for detection
# alone (the ablations) and for instance segmentation (with detection)
detection_entries = dict(
    coco=dict(
        sampling_ratio=0.25, loss_weight=1.0,
        dataloader=coco_det_train_dataloader))
instance_segmentation_entries = dict(
    coco=dict(detection_entries['coco'], dataloader=coco_train_dataloader))
