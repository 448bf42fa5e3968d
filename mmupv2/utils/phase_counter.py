# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""FLOPs per phase of a training step, forward and backward apart, and the
peak memory of the tensors the step allocates (``step_cost.py``)."""
import contextlib
import weakref
from collections import defaultdict
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import (
    flop_registry,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

#: the phase of whatever runs outside :meth:`PhaseCounter.phase`
DEFAULT_PHASE = 'other'
#: the metadata key of an autograd node's phase
_KEY = 'mmupv2_phase'


def _cpu_sdpa_flops(query, key, value, *args, out_val=None, **kwargs) -> int:
    return sdpa_flop_count(query.shape, key.shape, value.shape)


def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args,
                             out_val=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape,
                                    value.shape)


#: torch's formulas (2 FLOPs per multiply-add of every matrix product,
#: convolution and attention, ``torch.utils.flop_counter``), plus the CPU
#: kernels of ``scaled_dot_product_attention`` that torch has none for
FLOP_FORMULAS: Dict[Any, Callable[..., int]] = dict(flop_registry)
for _name, _formula in (
        ('_scaled_dot_product_flash_attention_for_cpu', _cpu_sdpa_flops),
        ('_scaled_dot_product_flash_attention_for_cpu_backward',
         _cpu_sdpa_backward_flops)):
    _op = getattr(torch.ops.aten, _name, None)
    if _op is not None:
        FLOP_FORMULAS[_op] = _formula


class _TagNodes(TorchFunctionMode):
    """Marks the autograd nodes that each call creates with the phase of
    the counter, so that their backward is counted under it."""

    def __init__(self, counter: 'PhaseCounter') -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        phase = self.counter.current
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.grad_fn is not None:
                _tag(tensor.grad_fn, phase)
        return out


def _tag(node, phase: str) -> None:
    """Tag ``node`` and the untagged nodes behind it (those a composite
    call made) with ``phase``."""
    stack = [node]
    while stack:
        node = stack.pop()
        if node is None or _KEY in node.metadata:
            continue
        node.metadata[_KEY] = phase
        stack.extend(n for n, _ in node.next_functions)


class _CountOps(TorchDispatchMode):
    """Counts each operator's FLOPs under its phase and tracks the bytes of
    the storages it allocates."""

    def __init__(self, counter: 'PhaseCounter') -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        counter = self.counter
        node = torch._C._current_autograd_node()
        if node is None:
            key = (counter.current, 'forward')
        else:  # the backward of a node, or a checkpoint's recomputation
            if _KEY not in node.metadata:
                # made by a reentrant checkpoint's recomputation, inside
                # the backward (no function mode runs there): the phase of
                # the checkpoint, the last tagged node that ran
                node.metadata[_KEY] = counter._backward_phase
            counter._backward_phase = node.metadata[_KEY]
            key = (node.metadata[_KEY], 'backward')
        formula = FLOP_FORMULAS.get(func._overloadpacket)
        if formula is not None:
            counter.flops[key] += int(formula(*args, **kwargs, out_val=out))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                counter._allocated(tensor)
        return out


class PhaseCounter:
    """FLOPs of what runs inside it, per phase and direction, and the peak
    bytes of the tensors allocated inside it that are alive at once.

    ::

        counter = PhaseCounter()
        with counter:
            with counter.phase('image encoder'):
                feats = encoder(images)            # forward, 'image encoder'
            loss = head(feats)                     # forward, 'other'
            loss.backward()                        # backward of each phase
        counter.flops[('image encoder', 'backward')]
        counter.peak_bytes

    **FLOPs**: torch's own formulas (:data:`FLOP_FORMULAS`, the
    ``FlopCounterMode`` convention: 2 per multiply-add of matrix products,
    convolutions and attention; element-wise operators count 0). A forward
    operator counts under the innermost :meth:`phase` open when it runs;
    a backward operator under the phase its autograd node was created in
    (nodes are tagged as the forward makes them), so a phase's backward is
    attributed to it even though autograd runs it later. The recomputation
    of a gradient-checkpointed block runs inside the backward and counts
    as its backward, as does the backward through the recomputed graph
    (its nodes, made where no function mode runs, take the phase of the
    last tagged node that ran: the checkpoint's).

    **Memory**: every storage that an operator inside the counter
    allocates is added when made and removed when freed (a weak reference
    on the storage); :attr:`peak_bytes` is the largest sum alive at once:
    activations, temporaries and gradients -- what
    ``torch.cuda.max_memory_allocated`` adds on a GPU, without the
    allocator's rounding and caching. Tensors made before the counter
    (parameters, inputs) are not in it.
    """

    def __init__(self) -> None:
        self.flops: Dict[Tuple[str, str], int] = defaultdict(int)
        self.live_bytes = 0
        self.peak_bytes = 0
        self._live: Dict[int, int] = {}
        self._phases: List[str] = []
        self._stack = contextlib.ExitStack()
        self._backward_phase = DEFAULT_PHASE  # of the last tagged node run

    @property
    def current(self) -> str:
        """The innermost open phase."""
        return self._phases[-1] if self._phases else DEFAULT_PHASE

    @contextlib.contextmanager
    def phase(self, name: str, keep_outer: Optional[Tuple[str, ...]] = None
              ) -> Iterator[None]:
        """Count what runs inside under ``name``; unless the open phase is
        one of ``keep_outer`` (which then stays: e.g. the text encoder
        called while encoding targets)."""
        if keep_outer and self.current in keep_outer:
            yield
            return
        self._phases.append(name)
        try:
            yield
        finally:
            self._phases.pop()

    def _allocated(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in self._live:
            return
        self._live[key] = size
        self.live_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(storage, self._freed, key)

    def _freed(self, key: int) -> None:
        self.live_bytes -= self._live.pop(key, 0)

    def by_phase(self) -> Dict[str, Dict[str, int]]:
        """``{phase: {'forward': F, 'backward': F}}``."""
        out: Dict[str, Dict[str, int]] = defaultdict(
            lambda: dict(forward=0, backward=0))
        for (phase, direction), flops in self.flops.items():
            out[phase][direction] += flops
        return dict(out)

    def total(self) -> int:
        return sum(self.flops.values())

    def __enter__(self) -> 'PhaseCounter':
        self._stack.enter_context(_TagNodes(self))
        self._stack.enter_context(_CountOps(self))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
