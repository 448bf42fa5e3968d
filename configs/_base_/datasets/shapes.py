# The built-in shapes benchmark (python tools/misc/generate_shapes.py --out
# data/shapes): every task on the same 160x160 images, in the formats of the
# real data sets. Entries are keyed by name for MultiTaskLoop (training) and
# MultiTaskValLoop (evaluation).
shapes_root = 'data/shapes/'
shapes_classes = ('circle', 'square', 'triangle', 'diamond', 'star',
                  'cross', 'ring')

# The generator's image size. A larger image (user data in the same formats)
# is shrunk to fit, a smaller one kept as it is (never upsampled): one
# 4000x4000 photo must not exhaust the memory of a model trained at 160.
shapes_max_size = 160

_pack = dict(type='PackUPv2Inputs')
_load = dict(type='LoadImageFromFile')
_limit = dict(type='LimitImageSize', max_size=shapes_max_size)
# No crop (the class is the shape of the largest object) and no flip where
# the text says "left" / "right".
shapes_cls_train_pipeline = [
    _load, _limit, dict(type='mmpretrain.RandomFlip', prob=0.5), _pack
]
shapes_det_train_pipeline = [
    _load,
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    _limit,
    dict(type='mmdet.RandomFlip', prob=0.5), _pack
]
# as mmdet's test pipelines: resize, then the (original-size) annotations
shapes_det_test_pipeline = [
    _load, _limit,
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    _pack
]
shapes_text_image_pipeline = [_load, _limit, _pack]
shapes_mlm_pipeline = [_pack]

_train_loader = dict(
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'))
_val_loader = dict(
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'))
_cls = dict(
    type='UPv2ClassificationDataset', data_root=shapes_root,
    data_prefix='images', classes=shapes_root + 'classification/classes.txt',
    dataset_name='shapes_cls')
_coco = dict(
    type='UPv2CocoDataset', data_root=shapes_root,
    data_prefix=dict(img='images/'), metainfo=dict(classes=shapes_classes))
_coco_train = dict(
    _coco, ann_file='annotations/instances_train.json',
    filter_cfg=dict(filter_empty_gt=True), test_mode=False,
    pipeline=shapes_det_train_pipeline)
_coco_val = dict(
    _coco, ann_file='annotations/instances_val.json',
    filter_cfg=dict(filter_empty_gt=False), test_mode=True,
    pipeline=shapes_det_test_pipeline)
_karpathy = dict(
    data_root=shapes_root, ann_file='annotations/karpathy_shapes.json',
    data_prefix=dict(img_path='images'), pipeline=shapes_text_image_pipeline)
_caption = dict(_karpathy, type='KarpathyCaptionDataset',
                dataset_name='shapes_caption')
_retrieval = dict(_karpathy, type='KarpathyRetrievalDataset',
                  dataset_name='shapes_retrieval')

shapes_train_dataloaders = dict(
    classification=dict(
        _train_loader, batch_size=16,
        dataset=dict(_cls, ann_file='classification/train.txt',
                     pipeline=shapes_cls_train_pipeline)),
    detection=dict(
        _train_loader, batch_size=4,
        dataset=dict(_coco_train, task='detection',
                     dataset_name='shapes_detection')),
    instance_segmentation=dict(
        _train_loader, batch_size=4,
        dataset=dict(_coco_train, task='instance_segmentation',
                     dataset_name='shapes_instance_segmentation')),
    captioning=dict(
        _train_loader, batch_size=16,
        dataset=dict(_caption, split='train', test_mode=False)),
    retrieval=dict(
        _train_loader, batch_size=32,
        dataset=dict(_retrieval, split='train', test_mode=False)),
    mlm=dict(
        _train_loader, batch_size=32,
        dataset=dict(
            type='TextLinesDataset', data_root=shapes_root,
            ann_file='text/train.txt', dataset_name='shapes_text',
            pipeline=shapes_mlm_pipeline)))

shapes_val_dataloaders = dict(
    classification=dict(
        _val_loader, batch_size=32,
        dataset=dict(_cls, ann_file='classification/val.txt',
                     pipeline=[_load, _limit, _pack])),
    detection=dict(
        _val_loader, batch_size=8,
        dataset=dict(_coco_val, task='detection',
                     dataset_name='shapes_detection')),
    instance_segmentation=dict(
        _val_loader, batch_size=8,
        dataset=dict(_coco_val, task='instance_segmentation',
                     dataset_name='shapes_instance_segmentation')),
    captioning=dict(
        _val_loader, batch_size=16,
        dataset=dict(_caption, split='val', test_mode=True)),
    retrieval=dict(
        _val_loader, batch_size=32,
        dataset=dict(_retrieval, split='val', test_mode=True)))

shapes_val_evaluators = dict(
    classification=dict(type='mmpretrain.Accuracy', topk=(1, ),
                        prefix='classification'),
    detection=dict(type='mmdet.CocoMetric',
                   ann_file=shapes_root + 'annotations/instances_val.json',
                   metric='bbox', prefix='detection'),
    instance_segmentation=dict(
        type='mmdet.CocoMetric',
        ann_file=shapes_root + 'annotations/instances_val.json',
        metric=['bbox', 'segm'], prefix='instance_segmentation'),
    captioning=dict(type='CaptionMetric', scorers=('BLEU', 'CIDEr'),
                    prefix='captioning'),
    retrieval=dict(type='ImageTextRetrievalMetric', topk=(1, 5, 10),
                   prefix='retrieval'))
