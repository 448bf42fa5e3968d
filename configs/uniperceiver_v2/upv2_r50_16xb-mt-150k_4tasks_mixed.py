# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The sampling switch alone (Table 4 toggles it with AdamW and without
# gathering): every iteration trains a batch of every entry with one
# optimizer step; MT-AdamW then runs with s_k = w_k = 1 (the losses are
# weighted by w_k), retrieval features gathered over the GPUs.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

train_cfg = dict(sampling='mixed')
