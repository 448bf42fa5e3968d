# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 2 "Global": classification, retrieval and captioning read only the
# M' = 10 global tokens (attention pools of the last feature map) and the
# flattened map, not the regional tokens. Detection needs the regional
# tokens and is left out, as in the paper ("-").
# Paper: classification 76.8, COCO retrieval 46.3 / 34.6, captioning 28.8.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

model = dict(
    tasks=dict(
        _delete_=True,
        classification=dict(
            _base_.model.tasks.classification, image_tokens='global'),
        retrieval=dict(_base_.model.tasks.retrieval, image_tokens='global'),
        captioning=dict(
            _base_.model.tasks.captioning, image_tokens='global')))

train_dataloader = dict(
    _delete_=True, **_base_.classification_entries,
    **_base_.captioning_entries, **_base_.retrieval_entries)
val_dataloader = dict(
    _delete_=True, **_base_.classification_val, **_base_.captioning_val,
    **_base_.retrieval_val)
val_evaluator = dict(
    _delete_=True, **_base_.classification_metric,
    **_base_.captioning_metric, **_base_.retrieval_metric)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
