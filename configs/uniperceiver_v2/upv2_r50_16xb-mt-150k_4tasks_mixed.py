# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# The sampling switch alone (Table 4 toggles it with AdamW and without
# gathering): every iteration holds one global batch shared among the
# entries by s_k, and MT-AdamW takes each entry present as one part of the
# update (its own normalised gradient, sampling ratio and w_k); retrieval
# features gathered over the GPUs (docs/multi_task_training.md).
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

train_cfg = dict(sampling='mixed')
