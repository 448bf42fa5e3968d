# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""No checkpoint with NaN or infinite weights is written."""
from typing import Dict, List, Mapping

import torch
from mmengine.hooks import Hook

from mmupv2.registry import HOOKS

_MAX_LISTED = 10


class NonFiniteWeightsError(FloatingPointError):
    """The weights to be saved hold NaN or infinite values; the message
    names the iteration, how many values and the first tensors."""


def non_finite_tensors(state_dict: Mapping[str, torch.Tensor]
                       ) -> Dict[str, int]:
    """``{key: number of NaN / inf values}`` of the floating-point tensors
    of ``state_dict`` that hold any."""
    counts = {}
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value.detach())).sum())
            if bad:
                counts[key] = bad
    return counts


@HOOKS.register_module()
class FiniteCheckpointHook(Hook):
    """Stop the run instead of writing a checkpoint whose weights are not
    all finite (``before_save_checkpoint``, i.e. before the file is
    opened; the last good checkpoint stays the latest).

    :class:`~mmupv2.engine.runner.MultiTaskLoop` registers it unless the
    config does. A diverged run (``non_finite_loss`` skips a NaN loss, but
    a finite loss can still give an overflowing update) ends here, at the
    first save after the weights went bad.
    """

    priority = 'VERY_LOW'  # after every hook that edits the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Raise :class:`NonFiniteWeightsError` if ``checkpoint``'s
        ``state_dict`` holds NaN / inf values."""
        bad = non_finite_tensors(checkpoint.get('state_dict', {}))
        if not bad:
            return
        keys: List[str] = list(bad)
        shown = ', '.join(f'{k} ({bad[k]})' for k in keys[:_MAX_LISTED])
        more = len(keys) - _MAX_LISTED
        if more > 0:
            shown += f', ... ({more} more tensors)'
        total = sum(p.numel() for p in checkpoint['state_dict'].values()
                    if isinstance(p, torch.Tensor))
        iteration = checkpoint.get('meta', {}).get('iter', runner.iter)
        raise NonFiniteWeightsError(
            f'iteration {iteration}: {sum(bad.values())} of {total} '
            f'weights are NaN or infinite, in {len(keys)} tensors: {shown}; '
            'the checkpoint is not written (the latest checkpoint in '
            f'{runner.work_dir} is the last good one). Lower the learning '
            'rate or resume from an earlier checkpoint.')
