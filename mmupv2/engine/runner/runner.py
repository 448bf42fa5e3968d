# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Runners whose checkpoint reads run no code from the file.

mmengine's ``Runner`` reads ``load_from``, ``resume`` and
``init_cfg=dict(type='Pretrained', checkpoint=...)`` through its
``CheckpointLoader``; its http loader calls
``torch.hub.load_state_dict_from_url(weights_only=False)``, so a URL in a
config can run code. The runners here read those files with mmupv2's
weights-only loader instead (:mod:`mmupv2.utils.checkpoint`), each read
inside its own :func:`~mmupv2.utils.safe_checkpoint_loading` block, so
mmengine's loader is left alone outside the read::

    runner_type = 'mmupv2.UPv2Runner'  (configs/_base_/default_runtime.py)
        RUNNERS.build(cfg) / build_runner(cfg) ─► UPv2Runner
            load_checkpoint (load_from)       ─┐
            resume (--resume, resume=True)    ├─► safe_checkpoint_loading()
            _init_model_weights (Pretrained) ─┘   └─► mmupv2 load_checkpoint

``runner_type='FlexibleRunner'`` gets
:class:`~mmupv2.engine.runner.launch.MultiTaskFlexibleRunner`, which reads
the same way. ``mmengine.runner.Runner.from_cfg(cfg)`` builds mmengine's
own Runner whatever ``runner_type`` says; mmupv2's loops
(:func:`check_checkpoint_loading`) refuse to start in such a runner when it
would download ``load_from`` with mmengine's loader, and the error says how
to build the runner instead. Trust (``weights_only=False``) is
asked for as everywhere: ``MMUPV2_TRUST_CHECKPOINTS=1`` or an enclosing
``safe_checkpoint_loading(trust=True)`` (``tools/train.py
--trust-checkpoint``). See ``docs/checkpoints.md``.
"""
from mmengine.runner import Runner

from mmupv2.registry import RUNNERS
from mmupv2.utils.checkpoint import (
    checkpoint_loading_is_safe,
    safe_checkpoint_loading,
)


class WeightsOnlyLoadingMixin:
    """Reads ``load_from`` and ``resume`` checkpoints of a Runner (or
    FlexibleRunner) with mmupv2's weights-only loader.

    Put it before the runner class: ``class R(WeightsOnlyLoadingMixin,
    Runner)``. The trust of an enclosing ``safe_checkpoint_loading`` block
    (or ``MMUPV2_TRUST_CHECKPOINTS``) applies.
    """

    def load_checkpoint(self, filename: str, *args, **kwargs):
        """The runner's ``load_checkpoint``, the file read weights-only."""
        with safe_checkpoint_loading():
            return super().load_checkpoint(filename, *args, **kwargs)

    def resume(self, filename: str, *args, **kwargs):
        """The runner's ``resume``, the file read weights-only."""
        with safe_checkpoint_loading():
            return super().resume(filename, *args, **kwargs)


@RUNNERS.register_module()
class UPv2Runner(WeightsOnlyLoadingMixin, Runner):
    """mmengine's ``Runner``, every checkpoint read weights-only:
    ``load_from``, ``resume`` and the ``Pretrained`` files of the model's
    ``init_cfg`` (see the module docstring). The ``runner_type`` of every
    mmupv2 config (``'mmupv2.UPv2Runner'``).
    """

    def _init_model_weights(self) -> None:
        """``Runner._init_model_weights`` (which calls the model's
        ``init_weights``), its ``Pretrained`` files read weights-only."""
        with safe_checkpoint_loading():
            super()._init_model_weights()


def check_checkpoint_loading(runner) -> None:
    """Refuse a runner that would read a remote checkpoint with mmengine's
    loader.

    Called by mmupv2's loops when the runner builds them, i.e. before
    ``load_or_resume``. mmengine reads URLs and its model-zoo names
    (``http(s)://``, ``torchvision://``, ``open-mmlab://`` ...) with
    ``torch.hub.load_state_dict_from_url(weights_only=False)``: code in the
    file runs. (A local file it reads with ``torch.load``'s default, which
    is weights-only since torch 2.6, so that is left to mmengine.) Passes
    for the runners of this module, inside a ``safe_checkpoint_loading``
    block, and when ``load_from`` is a local path or unset.

    Raises:
        RuntimeError: mmengine's own Runner (``Runner.from_cfg(cfg)``) with
            a ``load_from`` URL; the message names it and the ways to build
            a runner that reads it weights-only.
    """
    if isinstance(runner, WeightsOnlyLoadingMixin) or \
            checkpoint_loading_is_safe():
        return
    # mmengine has no public accessor for what load_or_resume will read
    load_from = getattr(runner, '_load_from', None)
    if not isinstance(load_from, str) or '://' not in load_from:
        return
    raise RuntimeError(
        f'{type(runner).__name__} would read load_from={load_from!r} with '
        "mmengine's checkpoint loader, which runs any code stored in a "
        "downloaded file (weights_only=False). Build the runner from the "
        "config's runner_type: `from mmengine.registry import RUNNERS; "
        'runner = RUNNERS.build(cfg)` (or mmupv2.engine.runner.UPv2Runner.'
        'from_cfg(cfg)), or run it inside `with mmupv2.utils.'
        'safe_checkpoint_loading():`. See docs/checkpoints.md.')
