# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 2 "Regional": every task reads only the O = 200 regional tokens,
# not the global ones (detection classifies the regional outputs in every
# row; here the decoder's input is the regional tokens alone as well).
# Paper: detection 48.2, classification 75.9, COCO retrieval 52.3 / 39.2,
# captioning 31.2.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    tasks=dict(
        detection=dict(image_tokens='regional'),
        classification=dict(image_tokens='regional'),
        retrieval=dict(image_tokens='regional'),
        captioning=dict(image_tokens='regional')))
