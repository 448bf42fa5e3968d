# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""MT-AdamW: AdamW for unmixed multi-task training (paper Sec. 4.4)."""
import math
from typing import Callable, Iterable, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch.optim import Optimizer

from mmupv2.registry import OPTIMIZERS

from .multi_task_optimizer import MultiTaskOptimizer


@OPTIMIZERS.register_module()
class MTAdamW(Optimizer, MultiTaskOptimizer):
    r"""AdamW whose every step is balanced for the task that produced it.

    When task :math:`k` (sampling ratio :math:`s_k`, loss weight
    :math:`\omega_k`) is sampled at step :math:`t`, for every parameter
    :math:`\theta` with a gradient:

    .. math::

        g_t &= \omega_k \, \nabla L_{t,k}(\theta_{t-1}) \,/\,
               \lVert \nabla L_{t,k}(\theta_{t-1}) \rVert_2 \\
        m_t &= \beta_1 m_{t-1} + \frac{1 - \beta_1}{s_k} g_t \\
        v_t &= \beta_2 v_{t-1} + \frac{1 - \beta_2}{s_k} g_t^2 \\
        \hat m_t &= m_t / (1 - \beta_1^t), \quad
        \hat v_t = v_t / (1 - \beta_2^t) \\
        \theta_t &= \theta_{t-1} (1 - \alpha \lambda)
                    - \alpha \, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    - The norm :math:`\lVert\cdot\rVert_2` is the *global* L2 norm over all
      parameters (of every group) that have a gradient this step. A zero norm
      (all gradients zero) leaves the gradient as it is instead of dividing
      by zero.
    - :math:`1/s_k` on both moments compensates for the task being sampled
      only a fraction :math:`s_k` of the steps, so that each task's expected
      contribution to the moments does not depend on its sampling ratio.
    - :math:`t` is the optimizer's global step count (every ``step()``
      call), kept in each parameter group as ``'step'``; bias correction uses
      it for every parameter, also for one that had no gradient in some steps
      (its moments are then left untouched, as in ``torch.optim.AdamW``).
    - Weight decay :math:`\lambda` is decoupled, as in ``torch.optim.AdamW``;
      :math:`\alpha` is the group's learning rate (``lr_mult`` from
      ``paramwise_cfg`` acts on it).

    The paper writes the moment updates with :math:`\beta` and
    :math:`1-\beta` swapped; the formula above is the standard notation the
    paper means (it reduces to AdamW for :math:`s_k = \omega_k = 1` up to the
    gradient normalisation).

    A :class:`~mmupv2.engine.optimizers.MultiTaskOptimizer`: call
    :meth:`set_task` before :meth:`step` (``MultiTaskLoop`` does); the
    values stay until the next call. Without any call the optimizer acts as
    :math:`s_k = 1, \omega_k = 1`.

    **Several tasks in one step** (mixed sampling). ``set_task(s, w,
    final=False)`` makes the coming :meth:`step` a *part*: it adds the
    current gradient, normalised by its own global norm, to the moments
    (``m = b1 m + (1 - b1) / s * g``, the decay applied once per update,
    at a parameter's first part) and moves no parameter. The step after a
    ``final=True`` call (the default) adds its part and then updates every
    parameter that any part of the update reached, with :math:`t`
    counting the update once. So with parts :math:`k \in K_t`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) \sum_{k \in K_t}
              \frac{g_{t,k}}{s_k}, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) \sum_{k \in K_t}
              \frac{g_{t,k}^2}{s_k}

    with :math:`g_{t,k} = \omega_k \nabla L_{t,k} / \lVert \nabla
    L_{t,k} \rVert_2`. A single final part is the step above, bitwise.
    ``MultiTaskLoop`` passes :math:`s = \lambda_k / n_k` for a mixed
    step's part of entry :math:`k` (:math:`n_k` samples this step,
    :math:`\lambda_k` expected), which is why ``sampling_ratio`` may
    exceed 1: the expected moment increments are then those of unmixed
    MT-AdamW (``docs/multi_task_training.md``).

    **A norm computed by the caller.** ZeRO (DeepSpeed stage 1/2) calls
    :meth:`step` once per parameter group, showing one group at a time and
    only this rank's partition; the norm cannot be computed here.
    :meth:`set_global_grad_norm` hands in the global norm, which every
    :meth:`step` uses until it is cleared
    (``MultiTaskDeepSpeedOptimWrapper`` does both around each step).

    Under mmengine's ``AmpOptimWrapper`` the ``GradScaler`` unscales the
    gradients before it calls :meth:`step`, so the norm is the norm of the
    true gradient; a step with inf/NaN gradients is skipped by the scaler.

    Sharded training (FSDP ``FULL_SHARD`` / ``SHARD_GRAD_OP``, ZeRO-2/3):
    each rank holds only a shard of the gradients, so the global norm needs
    the other ranks' shards: with ``sharded_grads=True`` the squared norm
    is summed over the default process group before the square root. It
    must be ``False`` under DDP, where every rank holds the whole (already
    all-reduced) gradient. ``MultiTaskLoop`` sets it from the model
    wrapper when training starts (FSDP ``FULL_SHARD`` / ``SHARD_GRAD_OP``:
    ``True``; ``NO_SHARD``, DDP: ``False``) and refuses the hybrid FSDP
    strategies (see :func:`~mmupv2.engine.runner.configure_grad_sharding`).

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\alpha`.
        betas: :math:`(\beta_1, \beta_2)`.
        eps: :math:`\epsilon`.
        weight_decay: :math:`\lambda` (decoupled).
        sharded_grads: sum the squared gradient norm over ranks (see above).
    """

    def __init__(self,
                 params: Iterable,
                 lr: float = 1e-4,
                 betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8,
                 weight_decay: float = 1e-4,
                 sharded_grads: bool = False) -> None:
        if lr < 0:
            raise ValueError(f'invalid learning rate: {lr}')
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f'invalid betas: {betas}')
        if eps < 0:
            raise ValueError(f'invalid eps: {eps}')
        if weight_decay < 0:
            raise ValueError(f'invalid weight_decay: {weight_decay}')
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, step=0)
        super().__init__(params, defaults)
        self.sampling_ratio = 1.0
        self.scale = 1.0
        self.final = True
        self.sharded_grads = sharded_grads
        self._grad_norm: Optional[float] = None
        # parameters whose moments the pending update has decayed (ids)
        self._pending: set = set()

    def set_task(self,
                 sampling_ratio: float = 1.0,
                 scale: float = 1.0,
                 *,
                 final: bool = True) -> None:
        """Declare the task of the coming :meth:`step`.

        Args:
            sampling_ratio: :math:`s_k`, the probability of sampling the task
                (in ``(0, 1]`` under unmixed sampling); any positive number
                (a mixed step's part: expected / actual samples, see the
                class docstring).
            scale: :math:`\\omega_k`, the task's loss weight (``>= 0``).
            final: ``False``: the coming step is a part of the update and
                moves no parameter; ``True``: it completes the update.
        """
        if not (math.isfinite(sampling_ratio) and sampling_ratio > 0):
            raise ValueError(f'sampling_ratio must be a finite number > 0, '
                             f'got {sampling_ratio}')
        if not scale >= 0:
            raise ValueError(f'scale must be >= 0, got {scale}')
        self.sampling_ratio = float(sampling_ratio)
        self.scale = float(scale)
        self.final = bool(final)

    def set_global_grad_norm(self, norm: Optional[float]) -> None:
        """Use ``norm`` as the global gradient norm of the coming steps
        instead of computing it; ``None`` computes it again.

        Args:
            norm: the L2 norm of the whole gradient (all groups, all ranks'
                partitions), as the ZeRO optimizer computes it.
        """
        if norm is not None and not (math.isfinite(norm) and norm >= 0):
            raise ValueError(f'the global gradient norm must be a finite '
                             f'number >= 0, got {norm}')
        self._grad_norm = None if norm is None else float(norm)

    def _grads_with_params(self, group: dict) -> Tuple[List, List]:
        params = [p for p in group['params'] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError('MTAdamW does not support sparse gradients')
        return params, [p.grad for p in params]

    @torch.no_grad()
    def global_grad_norm(self) -> torch.Tensor:
        """L2 norm of all gradients of all groups (a 0-d tensor), over all
        ranks' shards when ``sharded_grads`` is set; the norm handed in by
        :meth:`set_global_grad_norm` while one is set."""
        if self._grad_norm is not None:
            return torch.tensor(self._grad_norm, dtype=torch.float64)
        grads = [
            p.grad for group in self.param_groups for p in group['params']
            if p.grad is not None
        ]
        if grads:
            norms = torch._foreach_norm(grads)
            sq_norm = torch.stack([n.to(norms[0].device)
                                   for n in norms]).double().square().sum()
        else:
            sq_norm = torch.zeros((), dtype=torch.float64)
        if self.sharded_grads and dist.is_available() \
                and dist.is_initialized():
            if dist.get_backend() == 'nccl':
                sq_norm = sq_norm.cuda()
            dist.all_reduce(sq_norm)
        return sq_norm.sqrt()

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None):
        """Do one MT-AdamW update, or one part of it (see the class
        docstring)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        norm = float(self.global_grad_norm())
        grad_coef = self.scale / norm if norm > 0 else self.scale
        for group in self.param_groups:
            self._add_to_moments(group, grad_coef)
            if self.final:
                group['step'] += 1
                self._update(group)
        return loss

    def _add_to_moments(self, group: dict, grad_coef: float) -> None:
        """m = b1 m + (1 - b1) / s * (c g), v = b2 v + (1 - b2) / s (c g)^2
        with c = scale / ||grad|| for the parameters with a gradient; the
        decay by b1, b2 happens at a parameter's first part of an update.
        The scaled gradient is never copied."""
        params, grads = self._grads_with_params(group)
        if not params:
            return
        beta1, beta2 = group['betas']
        exp_avgs, exp_avg_sqs, fresh = [], [], []
        for p in params:
            state = self.state[p]
            if not state:
                state['exp_avg'] = torch.zeros_like(
                    p, memory_format=torch.preserve_format)
                state['exp_avg_sq'] = torch.zeros_like(
                    p, memory_format=torch.preserve_format)
            exp_avgs.append(state['exp_avg'])
            exp_avg_sqs.append(state['exp_avg_sq'])
            fresh.append(id(p) not in self._pending)
        if all(fresh):
            torch._foreach_mul_(exp_avgs, beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
        elif any(fresh):
            torch._foreach_mul_(
                [m for m, f in zip(exp_avgs, fresh) if f], beta1)
            torch._foreach_mul_(
                [v for v, f in zip(exp_avg_sqs, fresh) if f], beta2)
        self._pending.update(id(p) for p in params)
        torch._foreach_add_(
            exp_avgs, grads,
            alpha=(1 - beta1) * grad_coef / self.sampling_ratio)
        torch._foreach_addcmul_(
            exp_avg_sqs, grads, grads,
            value=(1 - beta2) * grad_coef**2 / self.sampling_ratio)

    def _update(self, group: dict) -> None:
        """Weight decay and the Adam update of the group's parameters that
        a part of the pending update reached."""
        params = [p for p in group['params'] if id(p) in self._pending]
        if not params:
            return
        self._pending.difference_update(id(p) for p in params)
        lr, eps, step = group['lr'], group['eps'], group['step']
        beta1, beta2 = group['betas']
        exp_avgs = [self.state[p]['exp_avg'] for p in params]
        exp_avg_sqs = [self.state[p]['exp_avg_sq'] for p in params]
        if group['weight_decay'] != 0:
            torch._foreach_mul_(params, 1 - lr * group['weight_decay'])
        # m_hat / (sqrt(v_hat) + eps) with m_hat = m / bc1, v_hat = v / bc2
        # is, exactly, sqrt(bc2) / bc1 * m / (sqrt(v) + eps * sqrt(bc2)):
        # the bias corrections go into two scalars, which saves a pass
        # over the denominator (a division of every element by
        # sqrt(bc2)) per step.
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denom, eps * bias_correction2_sqrt)
        torch._foreach_addcdiv_(
            params, exp_avgs, denom,
            value=-lr * bias_correction2_sqrt / bias_correction1)
