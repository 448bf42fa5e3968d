# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The data sets of cls_caption_retrieval.py at 384 x 384 (Swin): the same
# loaders, names and batch sizes; only the resizing steps of the four
# pipelines change. Each loader (and training entry) below is an override
# that merges into the 224 one of the same name and replaces its pipeline.

_base_ = ['./cls_caption_retrieval.py']

# ImageNet: random-resized crops at 384 for training, a plain resize to
# 384 x 384 for evaluation (Swin-384 practice)
cls_train_pipeline = [
    _base_._load,
    dict(type='mmpretrain.RandomResizedCrop', scale=384, **_base_._bicubic),
    _base_._flip, _base_._rand_augment, _base_._erasing, _base_._pack
]
cls_test_pipeline = [
    _base_._load,
    dict(type='mmpretrain.Resize', scale=384, **_base_._bicubic),
    _base_._pack
]
imagenet_train_dataloader = dict(dataset=dict(pipeline=cls_train_pipeline))
imagenet_val_dataloader = dict(dataset=dict(pipeline=cls_test_pipeline))

# Captioning and retrieval: COCO (Karpathy), the web pairs, Flickr30k
text_image_train_pipeline = [
    _base_._load,
    dict(type='mmpretrain.RandomResizedCrop', scale=384,
         crop_ratio_range=(0.5, 1.0), **_base_._bicubic),
    _base_._rand_augment, _base_._pack
]
_train = dict(dataset=dict(pipeline=text_image_train_pipeline))
coco_caption_train_dataloader = coco_retrieval_train_dataloader = _train
pairs_caption_dataloaders = pairs_retrieval_dataloaders = dict.fromkeys(
    _base_.pair_sources, _train)

text_image_test_pipeline = [
    _base_._load,
    dict(type='mmpretrain.Resize', scale=(384, 384), **_base_._bicubic),
    _base_._pack
]
_test = dict(dataset=dict(pipeline=text_image_test_pipeline))
coco_caption_test_dataloader = coco_retrieval_test_dataloader = _test
flickr30k_test_dataloader = _test

# The training entries (Table 8) hold the loaders: the same overrides
classification_entries = dict(
    imagenet=dict(dataloader=imagenet_train_dataloader))
captioning_entries = dict.fromkeys(_base_.captioning_entries,
                                   dict(dataloader=_train))
retrieval_entries = dict.fromkeys(_base_.retrieval_entries,
                                  dict(dataloader=_train))
yfcc_caption_entries = dict(yfcc_caption=dict(dataloader=_train))
yfcc_retrieval_entries = dict(yfcc_retrieval=dict(dataloader=_train))
