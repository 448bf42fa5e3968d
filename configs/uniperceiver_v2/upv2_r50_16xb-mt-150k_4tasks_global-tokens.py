# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 2 "Global": classification, retrieval and captioning read only the
# M' = 10 global tokens (attention pools of the last feature map) and the
# flattened map, not the regional tokens. Detection needs the regional
# tokens and is left out, as in the paper ("-").
# Paper: classification 76.8, COCO retrieval 46.3 / 34.6, captioning 28.8.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks.py']

_tasks = ('classification', 'retrieval', 'captioning')
model = dict(
    tasks=dict(
        _delete_=True,
        **{
            t: dict(_base_.model.tasks[t], image_tokens='global')
            for t in _tasks
        }))


def _keep(entries: dict, tasks: tuple) -> dict:
    """The entries of ``tasks``, replacing the base's."""
    return dict(
        _delete_=True,
        **{n: e
           for n, e in entries.items() if _base_.entry_tasks[n] in tasks})


train_dataloader = _keep(_base_.train_dataloader, _tasks)
val_dataloader = _keep(_base_.val_dataloader, _tasks)
val_evaluator = _keep(_base_.val_evaluator, _tasks)
test_dataloader = _keep(_base_.val_dataloader, _tasks)
test_evaluator = _keep(_base_.val_evaluator, _tasks)
del _tasks
