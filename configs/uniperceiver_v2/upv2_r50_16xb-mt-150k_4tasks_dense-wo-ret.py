# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Table 3 "w/o Retrieval": the dense-decoder ablation model trained and
# evaluated without retrieval (its head, training entries and evaluation).
# Paper (detection / classification / COCO retrieval I2T, T2I / captioning
# B@4): 49.5 / 76.3 / - / 27.4.
_base_ = ['./upv2_r50_16xb-mt-150k_4tasks_dense.py']

_tasks = tuple(t for t in _base_.model.tasks if t != 'retrieval')
model = dict(
    tasks=dict(_delete_=True, **{t: _base_.model.tasks[t] for t in _tasks}))


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
