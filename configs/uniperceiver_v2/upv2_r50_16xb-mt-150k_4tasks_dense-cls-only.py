# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 3 "Single Task", classification: the dense-decoder ablation model
# trained and evaluated on classification alone (its head, training entries
# and evaluation; the others' are left out). The row's four numbers come from
# four such single-task trainings (this and the other ``_dense-*-only``).
# Paper: classification 76.1.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_dense.py']

model = dict(
    tasks=dict(
        _delete_=True,
        classification=_base_.model.tasks.classification))
train_dataloader = dict(_delete_=True, **_base_.classification_entries)
val_dataloader = dict(_delete_=True, **_base_.classification_val)
val_evaluator = dict(_delete_=True, **_base_.classification_metric)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
