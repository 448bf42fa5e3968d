# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 3 "All Tasks": the ResNet-50 ablation model with a dense unified
# decoder (plain FFN in every layer instead of the conditional MoE).
# Paper: detection 49.8, classification 76.3, COCO retrieval 46.0 / 34.7,
# captioning B@4 28.9.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(decoder=dict(moe_cfg=None))
