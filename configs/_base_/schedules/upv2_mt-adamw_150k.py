# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Paper Sec. 5.2 (ResNet-50): the Swin schedule shortened to 150k
# iterations. The paper gives the decay step (160k) only for the 200k-
# iteration Swin runs; for ResNet-50 it is silent. Choice: decay at 120k,
# the same 80 % of the schedule as 160k of 200k.
_base_ = ['./upv2_mt-adamw_200k.py']

max_iters = 150000

train_cfg = dict(max_iters=max_iters)

# the 200k schedule's step, ending with the run and decaying at 120k
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_iters, milestones=[120000])
]
