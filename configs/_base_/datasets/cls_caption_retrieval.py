# The data sets of the whole-image tasks: ImageNet-1k classification
# (data/imagenet: train/, val/, meta/{train,val}.txt), COCO Caption in the
# Karpathy split (data/coco: train2014/, val2014/,
# annotations/dataset_coco.json) for captioning and retrieval, web
# image-text pairs for captioning and retrieval training (data/<name>/
# images/... and annotations/train.jsonl, written by
# tools/dataset_converters/image_text_pairs.py) and Flickr30k retrieval,
# Karpathy split, evaluation only (data/flickr30k: flickr30k-images/,
# dataset_flickr30k.json). See docs/datasets.md.
#
# One file because they share Uni-Perceiver's augmentation (paper
# Appendix B), and mmengine refuses a key defined by two sibling bases.
# Every pipeline and loader is at 224 (ResNet-50);
# cls_caption_retrieval_384.py gives them at 384 (Swin), same names.
# Captioning / retrieval do not flip: the texts say "left" and "right".
# Per-GPU batch sizes of Table 8: ImageNet 28, captioning 24, retrieval 28.

# --------------------------------------------------------------- pipelines
_bgr_mean = [103.53, 116.28, 123.675]
_bgr_std = [57.375, 57.12, 58.395]
_load = dict(type='LoadImageFromFile')
_pack = dict(type='PackUPv2Inputs')
_bicubic = dict(backend='pillow', interpolation='bicubic')
_rand_augment = dict(
    type='mmpretrain.RandAugment',
    policies='timm_increasing',
    num_policies=2,
    total_level=10,
    magnitude_level=9,
    magnitude_std=0.5,
    # pad with the RGB mean, rounded
    hparams=dict(pad_val=[124, 116, 104], interpolation='bicubic'))
_flip = dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal')
_erasing = dict(
    type='mmpretrain.RandomErasing', erase_prob=0.25, mode='rand',
    min_area_ratio=0.02, max_area_ratio=1 / 3, fill_color=_bgr_mean,
    fill_std=_bgr_std)

cls_train_pipeline = [
    _load,
    dict(type='mmpretrain.RandomResizedCrop', scale=224, **_bicubic),
    _flip, _rand_augment, _erasing, _pack
]
# resize the short edge to 256 and centre-crop (ImageNet practice)
cls_test_pipeline = [
    _load,
    dict(type='mmpretrain.ResizeEdge', scale=256, edge='short', **_bicubic),
    dict(type='mmpretrain.CenterCrop', crop_size=224), _pack
]
text_image_train_pipeline = [
    _load,
    dict(type='mmpretrain.RandomResizedCrop', scale=224,
         crop_ratio_range=(0.5, 1.0), **_bicubic),
    _rand_augment, _pack
]
text_image_test_pipeline = [
    _load, dict(type='mmpretrain.Resize', scale=(224, 224), **_bicubic), _pack
]

# ----------------------------------------------------------------- loaders
_train_loader = dict(
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'))
_test_loader = dict(
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'))

# ImageNet-1k
imagenet_root = 'data/imagenet/'
_imagenet_train = dict(
    type='UPv2ImageNetDataset', data_root=imagenet_root,
    ann_file='meta/train.txt', data_prefix='train', dataset_name='imagenet')
_imagenet_val = dict(_imagenet_train, ann_file='meta/val.txt',
                     data_prefix='val')
imagenet_train_dataloader = dict(
    _train_loader, batch_size=28,
    dataset=dict(_imagenet_train, pipeline=cls_train_pipeline))
imagenet_val_dataloader = dict(
    _test_loader, batch_size=64,
    dataset=dict(_imagenet_val, pipeline=cls_test_pipeline))
imagenet_val_evaluator = dict(
    type='mmpretrain.Accuracy', topk=(1, 5), prefix='classification')

# COCO Caption, Karpathy split: training on 'train' + 'restval', the 5k
# 'test' split evaluates captioning (BLEU-4, CIDEr) and retrieval (R@1/5/10
# both ways)
coco_caption_root = 'data/coco/'
_karpathy = dict(
    data_root=coco_caption_root, ann_file='annotations/dataset_coco.json',
    data_prefix=dict(img_path=''), dataset_name='coco_karpathy')
_caption_train = dict(_karpathy, type='KarpathyCaptionDataset',
                      split=('train', 'restval'), test_mode=False)
_caption_test = dict(_karpathy, type='KarpathyCaptionDataset', split='test',
                     test_mode=True)
_retrieval_train = dict(_caption_train, type='KarpathyRetrievalDataset')
_retrieval_test = dict(_caption_test, type='KarpathyRetrievalDataset')
coco_caption_train_dataloader = dict(
    _train_loader, batch_size=24,
    dataset=dict(_caption_train, pipeline=text_image_train_pipeline))
coco_retrieval_train_dataloader = dict(
    _train_loader, batch_size=28,
    dataset=dict(_retrieval_train, pipeline=text_image_train_pipeline))
coco_caption_test_dataloader = dict(
    _test_loader, batch_size=32,
    dataset=dict(_caption_test, pipeline=text_image_test_pipeline))
coco_retrieval_test_dataloader = dict(
    _test_loader, batch_size=32,
    dataset=dict(_retrieval_test, pipeline=text_image_test_pipeline))
coco_caption_evaluator = dict(
    type='CaptionMetric', scorers=('BLEU', 'CIDEr'), prefix='captioning')
coco_retrieval_evaluator = dict(
    type='ImageTextRetrievalMetric', topk=(1, 5, 10), prefix='retrieval')

# Web image-text pairs, one entry per source:
# ``pairs_{caption,retrieval}_dataloaders[source]``
pair_sources = ('yfcc', 'cc12m', 'cc3m', 'vg', 'sbu')
_pairs = dict(
    type='ImageTextPairDataset', ann_file='annotations/train.jsonl',
    data_prefix=dict(img_path=''))
pairs_caption_dataloaders = {
    n: dict(_train_loader, batch_size=24, dataset=dict(
        _pairs, task='captioning', dataset_name=n, data_root=f'data/{n}/',
        pipeline=text_image_train_pipeline))
    for n in pair_sources
}
pairs_retrieval_dataloaders = {
    n: dict(_train_loader, batch_size=28, dataset=dict(
        _pairs, task='retrieval', dataset_name=n, data_root=f'data/{n}/',
        pipeline=text_image_train_pipeline))
    for n in pair_sources
}

# Flickr30k retrieval (1k test images, never trained on)
flickr30k_root = 'data/flickr30k/'
_flickr30k = dict(
    type='KarpathyRetrievalDataset', data_root=flickr30k_root,
    ann_file='dataset_flickr30k.json',
    data_prefix=dict(img_path='flickr30k-images'), split='test',
    test_mode=True, dataset_name='flickr30k')
flickr30k_test_dataloader = dict(
    _test_loader, batch_size=32,
    dataset=dict(_flickr30k, pipeline=text_image_test_pipeline))
flickr30k_evaluator = coco_retrieval_evaluator

# ----------------------------------------------------------------- entries
# MultiTaskLoop entries of these loaders, by task: Table 8's sampling
# weight s_k and scaling factor w_k of each data set. YFCC stands apart:
# the ResNet-50 ablations train without it. A config composes them, e.g.
# ``train_dataloader = dict(**_base_.classification_entries, ...)``.
classification_entries = dict(
    imagenet=dict(
        sampling_ratio=0.1, loss_weight=1.0,
        dataloader=imagenet_train_dataloader))
yfcc_caption_entries = dict(
    yfcc_caption=dict(
        sampling_ratio=0.09831, loss_weight=0.16385,
        dataloader=pairs_caption_dataloaders['yfcc']))
captioning_entries = dict(
    cc12m_caption=dict(
        sampling_ratio=0.08514, loss_weight=0.1419,
        dataloader=pairs_caption_dataloaders['cc12m']),
    cc3m_caption=dict(
        sampling_ratio=0.04428, loss_weight=0.0738,
        dataloader=pairs_caption_dataloaders['cc3m']),
    vg_caption=dict(
        sampling_ratio=0.02973, loss_weight=0.04955,
        dataloader=pairs_caption_dataloaders['vg']),
    coco_caption=dict(
        sampling_ratio=0.0192, loss_weight=0.032,
        dataloader=coco_caption_train_dataloader),
    sbu_caption=dict(
        sampling_ratio=0.02328, loss_weight=0.0388,
        dataloader=pairs_caption_dataloaders['sbu']))
yfcc_retrieval_entries = dict(
    yfcc_retrieval=dict(
        sampling_ratio=0.09831, loss_weight=0.3277,
        dataloader=pairs_retrieval_dataloaders['yfcc']))
retrieval_entries = dict(
    cc12m_retrieval=dict(
        sampling_ratio=0.08514, loss_weight=0.2838,
        dataloader=pairs_retrieval_dataloaders['cc12m']),
    cc3m_retrieval=dict(
        sampling_ratio=0.04428, loss_weight=0.1476,
        dataloader=pairs_retrieval_dataloaders['cc3m']),
    vg_retrieval=dict(
        sampling_ratio=0.02973, loss_weight=0.0991,
        dataloader=pairs_retrieval_dataloaders['vg']),
    coco_retrieval=dict(
        sampling_ratio=0.0192, loss_weight=0.064,
        dataloader=coco_retrieval_train_dataloader),
    sbu_retrieval=dict(
        sampling_ratio=0.02328, loss_weight=0.0776,
        dataloader=pairs_retrieval_dataloaders['sbu']))
