# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 4, row 1 (mixed, no gather feature, no MT-AdamW): every iteration
# holds one global batch shared among the entries by s_k (each entry gets
# about s_k of its own batch size per GPU, so a mixed iteration costs what
# an unmixed one does on average), one AdamW step on Eq. 7's weighted sum,
# local retrieval negatives (docs/multi_task_training.md, "Mixed
# sampling").
# Paper: detection 49.6, classification 76.7, COCO retrieval 40.1 / 31.9,
# captioning 27.6.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_adamw-nogather.py']

train_cfg = dict(sampling='mixed')
