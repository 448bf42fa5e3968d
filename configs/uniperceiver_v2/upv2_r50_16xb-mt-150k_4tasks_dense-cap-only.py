# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 3 "Single Task", captioning: the dense-decoder ablation model trained
# and evaluated on captioning alone (its head, training entries and
# evaluation; the others' are left out). The row's four numbers come from
# four such single-task trainings (this and the other ``_dense-*-only``).
# Paper: captioning B@4 30.2.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_dense.py']

model = dict(
    tasks=dict(_delete_=True, captioning=_base_.model.tasks.captioning))
train_dataloader = dict(_delete_=True, **_base_.captioning_entries)
val_dataloader = dict(_delete_=True, **_base_.captioning_val)
val_evaluator = dict(_delete_=True, **_base_.captioning_metric)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
