# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""DeepSpeed's optim wrapper with what ``MultiTaskLoop`` calls."""
import contextlib
import math
from typing import Iterator, Optional

import torch
from mmengine._strategy.deepspeed import DeepSpeedOptimWrapper

from mmupv2.registry import OPTIM_WRAPPERS

from .multi_task_optimizer import find_multi_task_optimizer

ZERO_STAGES = (1, 2)


@OPTIM_WRAPPERS.register_module()
class MultiTaskDeepSpeedOptimWrapper(DeepSpeedOptimWrapper):
    """mmengine's ``DeepSpeedOptimWrapper`` for ``MultiTaskLoop`` and MT-AdamW.

    ``configs/_base_/strategies/deepspeed.py`` uses it. After the strategy
    prepared the run, :attr:`optimizer` is DeepSpeed's ZeRO optimizer
    (``DeepSpeedZeroOptimizer``) whose public ``optimizer`` attribute is
    the config's optimizer (MT-AdamW), and :attr:`model` is mmengine's
    ``MMDeepSpeedEngineWrapper`` around the ``DeepSpeedEngine``.

    What the loop calls, on DeepSpeed:

    - :meth:`optim_context`: nothing to enter (DeepSpeed casts to bf16 /
      fp16 itself);
    - :meth:`scale_loss`: the loss as it is (``engine.backward`` scales it
      for fp16 and for gradient accumulation);
    - :meth:`backward`: ``engine.backward(loss)`` (ZeRO reduces and
      partitions the gradients);
    - :meth:`should_update`: always ``True``: the engine's ``step()`` runs
      every micro step and updates at the accumulation boundary;
    - :meth:`step`: ``engine.step()``; with MT-AdamW, the global gradient
      norm is first computed by ZeRO over all parameter groups and all
      ranks' partitions and handed to MT-AdamW (below);
    - :meth:`zero_grad`: nothing (``engine.step()`` clears the gradients).

    **MT-AdamW under ZeRO.** ``MultiTaskLoop`` finds MT-AdamW for
    ``set_task`` through ``optimizer.optimizer``
    (:func:`~mmupv2.engine.optimizers.find_multi_task_optimizer`). ZeRO
    stage 1/2 calls MT-AdamW's ``step()`` once per parameter group, each
    time showing it only that group's fp32 partition of this rank, so
    MT-AdamW cannot compute the norm it divides by. Before each
    ``engine.step()`` this wrapper asks ZeRO for it
    (``scaled_global_norm()``: every group's partition norm, combined over
    the data-parallel ranks, divided by the loss scale: the norm of the
    unscaled gradient MT-AdamW receives) and hands it to MT-AdamW with
    ``set_global_grad_norm``, cleared after the step. ZeRO clips the
    gradients before MT-AdamW sees them when ``gradient_clipping > 0``
    (DeepSpeed's default is 1.0): the norm handed in is then that of the
    clipped gradient, by ZeRO's own rule (``unscale_and_clip_grads``:
    divided by ``(norm + 1e-6) / clip`` when that exceeds 1), so that
    MT-AdamW's normalised gradient is the same with or without clipping.
    It refuses at the first step, with the setting named:

    - ZeRO stage 3 (parameters partitioned across ranks; untested here);
    - ``gradient_accumulation_steps > 1``: one MT-AdamW update is one task
      (or one mixed step), never several iterations' gradients.

    Without ZeRO (stage 0, fp32) ``engine.optimizer`` is MT-AdamW itself
    and the gradients are all-reduced: it computes the norm itself.
    """

    def __init__(self, optimizer) -> None:
        super().__init__(optimizer)
        self._checked = False

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module) -> Iterator[None]:
        """Nothing to enter: DeepSpeed handles precision in the engine."""
        yield

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss unchanged (``engine.backward`` scales it)."""
        return loss

    def should_update(self) -> bool:
        """``True``: ``engine.step()`` must run after every backward."""
        return True

    def zero_grad(self, **kwargs) -> None:
        """Nothing: ``engine.step()`` has cleared the gradients."""

    def step(self, **kwargs) -> None:
        """``engine.step()``, with MT-AdamW told the global gradient norm
        under ZeRO."""
        task_optimizer = find_multi_task_optimizer(self.optimizer)
        if task_optimizer is None or task_optimizer is self.optimizer:
            self.model.step()
            return
        if not self._checked:
            self._check_engine()
            self._checked = True
        task_optimizer.set_global_grad_norm(self._global_grad_norm())
        try:
            self.model.step()
        finally:
            task_optimizer.set_global_grad_norm(None)

    def _check_engine(self) -> None:
        engine = self.model
        stage = engine.zero_optimization_stage()
        if stage not in ZERO_STAGES or not hasattr(self.optimizer,
                                                   'scaled_global_norm'):
            raise NotImplementedError(
                f'MultiTaskDeepSpeedOptimWrapper: MT-AdamW under DeepSpeed '
                f'needs ZeRO stage 1 or 2 (strategy.zero_optimization.stage), '
                f'got stage {stage} with {type(self.optimizer).__name__}')
        steps = engine.gradient_accumulation_steps()
        if steps != 1:
            raise ValueError(
                f'MultiTaskDeepSpeedOptimWrapper: '
                f'strategy.gradient_accumulation_steps={steps} with '
                'MT-AdamW: one update is one task (or one mixed step); set '
                'it to 1')

    def _global_grad_norm(self) -> Optional[float]:
        """The L2 norm, over all groups and ranks, of the gradient MT-AdamW
        will receive (unscaled, clipped as ZeRO clips it); ``None`` when
        ZeRO reports an invalid one (overflow: ZeRO skips the step)."""
        zero = self.optimizer
        norm = float(zero.scaled_global_norm()) / float(zero.loss_scale)
        if not (math.isfinite(norm) and norm >= 0):
            return None
        clip = float(self.model.gradient_clipping() or 0.0)
        if clip > 0:
            # DeepSpeedZeroOptimizer.unscale_and_clip_grads
            coef = (norm + 1e-6) / clip
            if coef > 1:
                norm = norm / coef
        return norm
