# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Checkpoints that torch's weights-only loader reads as they are."""
from typing import Any, Dict

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from mmupv2.registry import HOOKS

#: The key that marks a ``HistoryBuffer`` written as data.
BUFFER_TAG = '__history_buffer__'


def buffer_to_data(buffer: HistoryBuffer) -> Any:
    """``{BUFFER_TAG: 1, 'log_history': (N,) tensor, 'count_history': (N,)
    tensor, 'max_length': int}``; the buffer itself if its arrays are not
    numeric (torch cannot hold them)."""
    log, count = buffer.data
    if log.dtype.kind not in 'biuf' or count.dtype.kind not in 'biuf':
        return buffer
    return {
        BUFFER_TAG: 1,
        'log_history': torch.from_numpy(np.array(log, copy=True)),
        'count_history': torch.from_numpy(np.array(count, copy=True)),
        'max_length': int(buffer.max_length),
    }


def buffer_from_data(data: Any) -> Any:
    """The inverse of :func:`buffer_to_data` (other values unchanged)."""
    if not (isinstance(data, dict) and data.get(BUFFER_TAG) == 1):
        return data
    return HistoryBuffer(
        data['log_history'].numpy(),
        data['count_history'].numpy(),
        max_length=data['max_length'])


def message_hub_to_data(state: Dict[str, Any]) -> None:
    """In place: ``log_scalars``' buffers as data, numpy scalars of
    ``runtime_info`` as Python numbers."""
    scalars = state.get('log_scalars') or {}
    for key, value in scalars.items():
        if isinstance(value, HistoryBuffer):
            scalars[key] = buffer_to_data(value)
    info = state.get('runtime_info') or {}
    for key, value in info.items():
        if isinstance(value, np.generic):
            info[key] = value.item()


def message_hub_from_data(state: Dict[str, Any]) -> None:
    """In place: the buffers of :func:`message_hub_to_data` back."""
    scalars = state.get('log_scalars') or {}
    for key, value in scalars.items():
        scalars[key] = buffer_from_data(value)


@HOOKS.register_module()
class DataOnlyCheckpointHook(Hook):
    """Write the message hub of every checkpoint as plain data, and read it
    back on load.

    ::

        before_save_checkpoint:  checkpoint['message_hub']
                                   log_scalars: HistoryBuffer -> dict of
                                                tensors + max_length
                                   runtime_info: numpy scalars -> numbers
        after_load_checkpoint:   the dicts -> HistoryBuffer (before the
                                 Runner's resume reads them)

    mmengine pickles ``HistoryBuffer`` objects, which torch's weights-only
    loader (torch >= 2.6's default, used by mmengine's own
    ``load_checkpoint``) refuses. With this hook the checkpoints of an
    mmupv2 run hold only tensors, containers and numbers, so a plain
    mmengine ``Runner(resume=True)`` resumes them without an allow-list or
    trust (see ``docs/checkpoints.md``); mmupv2's own loader reads older
    checkpoints too. ``MultiTaskLoop`` registers this hook unless the config
    does. The buffers' histories are kept exactly (tensors of their dtype).
    """

    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if isinstance(checkpoint.get('message_hub'), dict):
            message_hub_to_data(checkpoint['message_hub'])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if isinstance(checkpoint.get('message_hub'), dict):
            message_hub_from_data(checkpoint['message_hub'])
