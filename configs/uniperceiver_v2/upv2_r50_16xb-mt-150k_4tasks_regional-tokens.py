# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 2 "Regional": classification, retrieval and captioning read only
# the O = 200 regional tokens, not the global ones.
# Paper: detection 48.2, classification 75.9, COCO retrieval 52.3 / 39.2,
# captioning 31.2.
# Limitation: DetectionTask has no image_tokens option; its decoder
# input stays [global; regional] (it classifies the regional outputs only),
# so the detection number of this row is not the paper's setting.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    tasks=dict(
        classification=dict(image_tokens='regional'),
        retrieval=dict(image_tokens='regional'),
        captioning=dict(image_tokens='regional')))
