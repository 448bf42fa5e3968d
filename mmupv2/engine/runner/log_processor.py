# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A log processor that names the task of each logged training iteration."""
from typing import Tuple

from mmengine.runner import LogProcessor

from mmupv2.registry import LOG_PROCESSORS


@LOG_PROCESSORS.register_module()
class MultiTaskLogProcessor(LogProcessor):
    """mmengine's ``LogProcessor`` plus ``task: <entry>`` on training lines.

    The entry comes from the message hub's runtime info ``train_task``, which
    :class:`~mmupv2.engine.runner.MultiTaskLoop` sets every iteration. The
    per-entry losses (``loss_<entry>``) are smoothed over each entry's own
    last ``window_size`` iterations, because a history buffer only grows
    when its entry trains.
    """

    def get_log_after_iter(self, runner, batch_idx: int,
                           mode: str) -> Tuple[dict, str]:
        tag, log_str = super().get_log_after_iter(runner, batch_idx, mode)
        task = runner.message_hub.get_info('train_task')
        if mode == 'train' and task is not None:
            tag['task'] = task
            log_str = f'{log_str}  task: {task}'
        return tag, log_str
