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
_base_ = [
    '../_base_/models/uniperceiver_v2_swin-b.py',
    '../_base_/schedules/upv2_mt-adamw_200k.py',
    '../_base_/default_runtime.py',
    '../_base_/datasets/cls_caption_retrieval_384.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/datasets/books_wiki.py',
]

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
        classification={{_base_.model.tasks.classification}},
        instance_segmentation={{_base_.model.tasks.instance_segmentation}},
        captioning={{_base_.model.tasks.captioning}},
        retrieval={{_base_.model.tasks.retrieval}},
        mlm={{_base_.model.tasks.mlm}}))

# Table 8: (sampling weight s_k, scaling factor w_k) of each data set, from
# the data set files; the per-GPU batch sizes are the loaders' (ImageNet 28,
# COCO 1, Books&Wiki 256, captioning 24, retrieval 28). The loop normalises
# the s_k to sum to one (they sum to 0.99988).
train_dataloader = dict(
    **_base_.classification_entries, **_base_.instance_segmentation_entries,
    **_base_.mlm_entries, **_base_.yfcc_caption_entries,
    **_base_.captioning_entries, **_base_.yfcc_retrieval_entries,
    **_base_.retrieval_entries)

# Evaluation (Table 6): ImageNet-1k, COCO detection + instance segmentation,
# COCO captioning and retrieval (Karpathy 5k test), Flickr30k retrieval (1k
# test, never trained on).
val_dataloader = dict(
    imagenet={{_base_.imagenet_val_dataloader}},
    coco={{_base_.coco_val_dataloader}},
    coco_caption={{_base_.coco_caption_test_dataloader}},
    coco_retrieval={{_base_.coco_retrieval_test_dataloader}},
    flickr30k={{_base_.flickr30k_test_dataloader}})
val_evaluator = dict(
    imagenet={{_base_.imagenet_val_evaluator}},
    coco={{_base_.coco_val_evaluator}},
    coco_caption={{_base_.coco_caption_evaluator}},
    coco_retrieval={{_base_.coco_retrieval_evaluator}},
    flickr30k={{_base_.flickr30k_evaluator}})
test_dataloader = val_dataloader
test_evaluator = val_evaluator
