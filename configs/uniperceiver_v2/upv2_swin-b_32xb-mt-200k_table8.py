# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Uni-Perceiver-v2 BASE (paper Sec. 5.2, 5.4, Table 6): Swin-B, 32 GPUs,
# every task and data set of Table 8 with its per-GPU batch size, sampling
# weight s_k and scaling factor w_k; unmixed sampling, MT-AdamW, 200k
# iterations, lr x0.1 at 160k; 384 x 384 inputs except detection.
# ``xb-mt``: the batch size per GPU is the sampled entry's (Table 8), so one
# number cannot name it.
#
# Data sets (docs/datasets.md): data/imagenet, data/coco (COCO 2017 +
# Karpathy captions), data/{yfcc,cc12m,cc3m,vg,sbu} (image-text pairs),
# data/books_wiki; evaluation adds data/flickr30k.
from mmengine import Config

_base_ = [
    '../_base_/models/uniperceiver_v2_swin-b.py',
    '../_base_/schedules/upv2_mt-adamw_200k.py',
    '../_base_/default_runtime.py',
]

# Every file of _base_/datasets inherits pipelines.py, and mmengine refuses
# a key defined by two sibling bases, so the data set configs are read here
# instead of being listed in _base_.
_data = '{{ fileDirname }}/../_base_/datasets/'
_imagenet = Config.fromfile(_data + 'imagenet.py')
_coco = Config.fromfile(_data + 'coco_instance.py')
_karpathy = Config.fromfile(_data + 'coco_caption_karpathy.py')
_pairs = Config.fromfile(_data + 'image_text_pairs.py')
_books_wiki = Config.fromfile(_data + 'books_wiki.py')
_flickr30k = Config.fromfile(_data + 'flickr30k_retrieval.py')

model = dict(
    image_encoder=dict(
        backbone=dict(
            # ImageNet-21k pre-trained Swin-B at 384 (mmpretrain's
            # conversion, also fine-tuned on IN-1k; see docs/model_zoo.md)
            init_cfg=dict(
                _delete_=True,
                type='Pretrained',
                checkpoint='https://download.openmmlab.com/mmclassification/'
                'v0/swin-transformer/convert/'
                'swin_base_patch4_window12_384_22kto1k-d59b0d1d.pth',
                prefix='backbone.'))),
    # COCO trains detection and instance segmentation in one entry
    # (Table 8): the instance segmentation head, whose boxes are also the
    # detection results. A separate detection head would never be trained.
    tasks=dict(
        _delete_=True,
        **{
            name: head
            for name, head in _base_.model.tasks.items()
            if name != 'detection'
        }))

# Table 8: (sampling weight s_k, scaling factor w_k) of each image-text
# source; the per-GPU batch sizes (captioning 24, retrieval 28) are the
# loaders'. The loop normalises the s_k to sum to one (they sum to 0.99988).
_caption = dict(
    yfcc=(0.09831, 0.16385),
    cc12m=(0.08514, 0.1419),
    cc3m=(0.04428, 0.0738),
    vg=(0.02973, 0.04955),
    coco=(0.0192, 0.032),
    sbu=(0.02328, 0.0388))
_retrieval = dict(
    yfcc=(0.09831, 0.3277),
    cc12m=(0.08514, 0.2838),
    cc3m=(0.04428, 0.1476),
    vg=(0.02973, 0.0991),
    coco=(0.0192, 0.064),
    sbu=(0.02328, 0.0776))
_caption_loaders = dict(
    _pairs.pairs_caption_dataloaders_384,
    coco=_karpathy.coco_caption_train_dataloader_384)
_retrieval_loaders = dict(
    _pairs.pairs_retrieval_dataloaders_384,
    coco=_karpathy.coco_retrieval_train_dataloader_384)

train_dataloader = dict(
    imagenet=dict(
        sampling_ratio=0.1,
        loss_weight=1.0,
        dataloader=_imagenet.imagenet_train_dataloader_384),  # batch 28
    coco=dict(
        sampling_ratio=0.25,
        loss_weight=1.0,
        dataloader=_coco.coco_train_dataloader),  # batch 1
    books_wiki=dict(
        sampling_ratio=0.05,
        loss_weight=0.5,
        dataloader=_books_wiki.books_wiki_train_dataloader),  # batch 256
    **{
        f'{name}_caption': dict(
            sampling_ratio=s, loss_weight=w,
            dataloader=_caption_loaders[name])
        for name, (s, w) in _caption.items()
    },
    **{
        f'{name}_retrieval': dict(
            sampling_ratio=s, loss_weight=w,
            dataloader=_retrieval_loaders[name])
        for name, (s, w) in _retrieval.items()
    })

# Evaluation (Table 6): ImageNet-1k, COCO detection + instance segmentation,
# COCO captioning and retrieval (Karpathy 5k test), Flickr30k retrieval (1k
# test, never trained on).
val_dataloader = dict(
    imagenet=_imagenet.imagenet_val_dataloader_384,
    coco=_coco.coco_val_dataloader,
    coco_caption=_karpathy.coco_caption_test_dataloader_384,
    coco_retrieval=_karpathy.coco_retrieval_test_dataloader_384,
    flickr30k=_flickr30k.flickr30k_test_dataloader_384)
val_evaluator = dict(
    imagenet=_imagenet.imagenet_val_evaluator,
    coco=_coco.coco_val_evaluator,
    coco_caption=_karpathy.coco_caption_evaluator,
    coco_retrieval=_karpathy.coco_retrieval_evaluator,
    flickr30k=_flickr30k.flickr30k_evaluator)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

del Config, _data, _imagenet, _coco, _karpathy, _pairs, _books_wiki
del _flickr30k, _caption, _retrieval, _caption_loaders, _retrieval_loaders
