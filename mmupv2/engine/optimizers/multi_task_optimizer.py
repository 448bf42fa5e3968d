# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What ``MultiTaskLoop`` tells an optimizer about the step it is about to
take (paper Sec. 4.4)."""
from typing import Protocol, runtime_checkable


@runtime_checkable
class MultiTaskOptimizer(Protocol):
    """An optimizer that balances each update for the task that produced it.

    ``MultiTaskLoop`` calls :meth:`set_task` once per iteration, after the
    backward pass(es) and before ``optim_wrapper.step()``:

    - unmixed sampling: ``set_task(sampling_ratio=s_k, scale=w_k)`` of the
      iteration's entry, and the loss is *not* multiplied by
      :math:`\\omega_k` (the optimizer applies it);
    - mixed sampling: ``set_task(sampling_ratio=1.0, scale=1.0)``, the
      entries' losses multiplied by their :math:`\\omega_k`.

    The values hold until the next call; an optimizer never told acts as
    :math:`s_k = \\omega_k = 1`. An optimizer that is not a
    ``MultiTaskOptimizer`` (``torch.optim.AdamW``, Table 4's ablation) gets
    no call and every loss multiplied by its :math:`\\omega_k`.

    Structural: ``isinstance(optimizer, MultiTaskOptimizer)`` holds for any
    object with a ``set_task`` method. Implemented by
    :class:`~mmupv2.engine.optimizers.MTAdamW`.
    """

    def set_task(self, sampling_ratio: float = 1.0,
                 scale: float = 1.0) -> None:
        """Declare the task of the coming ``step()``.

        Args:
            sampling_ratio: :math:`s_k`, the probability that an iteration
                trains the task, in ``(0, 1]``.
            scale: :math:`\\omega_k`, the task's loss weight (``>= 0``).
        """
