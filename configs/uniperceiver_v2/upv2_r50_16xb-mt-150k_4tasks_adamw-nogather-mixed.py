# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 4, row 1 (mixed, no gather feature, no MT-AdamW): every iteration
# trains a batch of every entry (losses weighted by w_k, one optimizer
# step), AdamW, local retrieval negatives.
# Paper: detection 49.6, classification 76.7, COCO retrieval 40.1 / 31.9,
# captioning 27.6.
# Note: MultiTaskLoop's mixed mode runs every *entry* (here 12: each image-
# text source is its own entry) per iteration; the paper does not say how
# it mixed the sources of one task.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_adamw-nogather.py']

train_cfg = dict(sampling='mixed')
