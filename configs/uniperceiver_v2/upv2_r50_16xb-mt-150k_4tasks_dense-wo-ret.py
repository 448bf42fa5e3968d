# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 3 "w/o Retrieval": the dense-decoder ablation model trained and
# evaluated without retrieval (its head, training entries and evaluation).
# Paper (detection / classification / COCO retrieval I2T, T2I / captioning
# B@4): 49.5 / 76.3 / - / 27.4.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_dense.py']

model = dict(
    tasks=dict(
        _delete_=True,
        classification=_base_.model.tasks.classification,
        detection=_base_.model.tasks.detection,
        captioning=_base_.model.tasks.captioning))
train_dataloader = dict(
    _delete_=True, **_base_.classification_entries,
    **_base_.detection_entries, **_base_.captioning_entries)
val_dataloader = dict(
    _delete_=True, **_base_.classification_val, **_base_.detection_val,
    **_base_.captioning_val)
val_evaluator = dict(
    _delete_=True, **_base_.classification_metric,
    **_base_.detection_metric, **_base_.captioning_metric)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
