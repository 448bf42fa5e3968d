# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A test-only hook that records, per rank, what every iteration trained.

Imported by ``tests/data/configs/toy_multitask_dist.py`` (``custom_imports``
``tests.test_tools.rank_task_hook``) in the ``torchrun`` processes of
``test_train_test.py``, which put the repository root on ``PYTHONPATH``.
"""
import os
import os.path as osp
from typing import Optional, Sequence, Union

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmupv2.registry import HOOKS


@HOOKS.register_module()
class RankTaskRecorderHook(Hook):
    """Append ``<iter> <entry> <task>`` to ``<out_dir>/rank<rank>.txt`` after
    every training iteration.

    ``entry`` is the message hub's ``train_task`` (what ``MultiTaskLoop``
    scheduled), ``task`` the task in the metainfo of the batch's samples
    (what was actually trained). Used to check that all ranks of a
    distributed run train the same entry in every iteration.

    Args:
        out_dir: folder of the files; defaults to ``<work_dir>/rank_tasks``.
    """
    priority = 'VERY_LOW'

    def __init__(self, out_dir: Optional[str] = None) -> None:
        self.out_dir = out_dir

    def _path(self, runner) -> str:
        out_dir = self.out_dir or osp.join(runner.work_dir, 'rank_tasks')
        os.makedirs(out_dir, exist_ok=True)
        return osp.join(out_dir, f'rank{get_rank()}.txt')

    def before_train(self, runner) -> None:
        open(self._path(runner), 'w').close()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Union[dict, tuple, list, None] = None,
                         outputs: Optional[dict] = None) -> None:
        entry = runner.message_hub.get_info('train_task')
        samples: Sequence = []
        if isinstance(data_batch, dict):
            samples = data_batch.get('data_samples') or []
        tasks = sorted({s.task for s in samples}) or ['-']
        with open(self._path(runner), 'a') as f:
            f.write(f"{batch_idx} {entry} {','.join(tasks)}\n")
