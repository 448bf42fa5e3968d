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


def _loader(dataset, batch_size, train):
    return dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='InfiniteSampler', shuffle=True) if train else
        dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dataset)


def _cls(split, pipeline):
    return dict(
        type='UPv2ClassificationDataset', data_root=shapes_root,
        ann_file=f'classification/{split}.txt', data_prefix='images',
        classes=shapes_root + 'classification/classes.txt',
        dataset_name='shapes_cls', pipeline=pipeline)


def _coco(split, task, pipeline, test_mode):
    return dict(
        type='UPv2CocoDataset', task=task, dataset_name=f'shapes_{task}',
        data_root=shapes_root, ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img='images/'), metainfo=dict(classes=shapes_classes),
        filter_cfg=dict(filter_empty_gt=not test_mode), test_mode=test_mode,
        pipeline=pipeline)


def _karpathy(kind, split, test_mode, name):
    return dict(
        type=f'Karpathy{kind}Dataset', data_root=shapes_root,
        ann_file='annotations/karpathy_shapes.json',
        data_prefix=dict(img_path='images'), split=split,
        test_mode=test_mode, dataset_name=name,
        pipeline=shapes_text_image_pipeline)


shapes_train_dataloaders = dict(
    classification=_loader(_cls('train', shapes_cls_train_pipeline), 16,
                           True),
    detection=_loader(
        _coco('train', 'detection', shapes_det_train_pipeline, False), 4,
        True),
    instance_segmentation=_loader(
        _coco('train', 'instance_segmentation', shapes_det_train_pipeline,
              False), 4, True),
    captioning=_loader(
        _karpathy('Caption', 'train', False, 'shapes_caption'), 16, True),
    retrieval=_loader(
        _karpathy('Retrieval', 'train', False, 'shapes_retrieval'), 32,
        True),
    mlm=_loader(
        dict(type='TextLinesDataset', data_root=shapes_root,
             ann_file='text/train.txt', dataset_name='shapes_text',
             pipeline=shapes_mlm_pipeline), 32, True))

shapes_val_dataloaders = dict(
    classification=_loader(_cls('val', [_load, _limit, _pack]), 32,
                           False),
    detection=_loader(
        _coco('val', 'detection', shapes_det_test_pipeline, True), 8, False),
    instance_segmentation=_loader(
        _coco('val', 'instance_segmentation', shapes_det_test_pipeline,
              True), 8, False),
    captioning=_loader(
        _karpathy('Caption', 'val', True, 'shapes_caption'), 16, False),
    retrieval=_loader(
        _karpathy('Retrieval', 'val', True, 'shapes_retrieval'), 32, False))

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
