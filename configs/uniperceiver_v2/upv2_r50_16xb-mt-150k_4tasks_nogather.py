# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The gather-feature switch alone (Table 4 toggles it with AdamW): MT-AdamW
# and unmixed sampling as the reference model, retrieval negatives from the
# local batch of each GPU only.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(tasks=dict(retrieval=dict(gather=False)))
