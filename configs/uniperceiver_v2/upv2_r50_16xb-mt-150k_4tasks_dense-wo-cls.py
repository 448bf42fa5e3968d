# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 3 "w/o Classification": the dense-decoder ablation model trained and
# evaluated without classification (its head, training entries and evaluation).
# Paper (detection / classification / COCO retrieval I2T, T2I / captioning
# B@4): 50.1 / - / 51.6, 38.6 / 25.9.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_dense.py']

model = dict(
    tasks=dict(
        _delete_=True,
        detection=_base_.model.tasks.detection,
        captioning=_base_.model.tasks.captioning,
        retrieval=_base_.model.tasks.retrieval))
train_dataloader = dict(
    _delete_=True, **_base_.detection_entries,
    **_base_.captioning_entries, **_base_.retrieval_entries)
val_dataloader = dict(
    _delete_=True, **_base_.detection_val, **_base_.captioning_val,
    **_base_.retrieval_val)
val_evaluator = dict(
    _delete_=True, **_base_.detection_metric,
    **_base_.captioning_metric, **_base_.retrieval_metric)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
