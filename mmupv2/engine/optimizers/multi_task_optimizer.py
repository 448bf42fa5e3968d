# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What ``MultiTaskLoop`` tells an optimizer about the step it is about to
take (paper Sec. 4.4)."""
from typing import Any, Optional, Protocol, runtime_checkable


@runtime_checkable
class MultiTaskOptimizer(Protocol):
    """An optimizer that balances each update for the task that produced it.

    ``MultiTaskLoop`` calls :meth:`set_task` after a backward pass and
    before ``optim_wrapper.step()``:

    - unmixed sampling: once per iteration,
      ``set_task(sampling_ratio=s_k, scale=w_k)`` of the iteration's entry;
      the loss is *not* multiplied by :math:`\\omega_k` (the optimizer
      applies it);
    - mixed sampling: once per entry present in the step, each after that
      entry's own backward pass and followed by its own ``step()``:
      ``set_task(sampling_ratio=lambda_k / n_k, scale=w_k, final=...)``,
      ``final=True`` for the last entry only; the steps before it are
      parts of one update (see :class:`~mmupv2.engine.optimizers.MTAdamW`).

    The values hold until the next call; an optimizer never told acts as
    :math:`s_k = \\omega_k = 1`. An optimizer that is not a
    ``MultiTaskOptimizer`` (``torch.optim.AdamW``, Table 4's ablation) gets
    no call and the losses weighted as the paper's Eq. 7 says
    (``docs/multi_task_training.md``).

    Structural: ``isinstance(optimizer, MultiTaskOptimizer)`` holds for any
    object with a ``set_task`` method. Implemented by
    :class:`~mmupv2.engine.optimizers.MTAdamW`.
    """

    def set_task(self,
                 sampling_ratio: float = 1.0,
                 scale: float = 1.0,
                 *,
                 final: bool = True) -> None:
        """Declare the task of the coming ``step()``.

        Args:
            sampling_ratio: :math:`s_k`, the probability that an iteration
                trains the task, in ``(0, 1]``; in a mixed step the ratio of
                the entry's expected to actual samples (any number > 0).
            scale: :math:`\\omega_k`, the task's loss weight (``>= 0``).
            final: whether the coming ``step()`` completes the update
                (``False``: it is a part of a mixed step's update).
        """


def find_multi_task_optimizer(optimizer: Any) -> Optional[MultiTaskOptimizer]:
    """The :class:`MultiTaskOptimizer` inside ``optimizer``, or ``None``.

    ``optimizer`` is an optim wrapper's ``optimizer``: the optimizer itself
    (``OptimWrapper``, ``AmpOptimWrapper``, FSDP), or an optimizer that
    wraps it in its public ``optimizer`` attribute (DeepSpeed's ZeRO
    optimizers, ``DeepSpeedZeroOptimizer.optimizer``), followed until one
    has ``set_task``.
    """
    seen = set()
    while optimizer is not None and id(optimizer) not in seen:
        if isinstance(optimizer, MultiTaskOptimizer):
            return optimizer
        seen.add(id(optimizer))
        optimizer = getattr(optimizer, 'optimizer', None)
    return None
