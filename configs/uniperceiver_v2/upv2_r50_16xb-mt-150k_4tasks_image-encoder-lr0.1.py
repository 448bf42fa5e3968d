# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The other reading of "the learning rate of modality-specific encoders is
# multiplied by 0.1" (paper Sec. 4.4): the whole image encoder (backbone,
# neck, proposal network, fusion, global pools) and the text encoder at
# 0.1x, not only their pre-trained parts (the base config; its schedule
# base says why that is the default).
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'image_encoder': dict(lr_mult=0.1),
            'text_encoder': dict(lr_mult=0.1)
        }))
