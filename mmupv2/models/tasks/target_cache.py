# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The inference cache of target embeddings (class names, vocabulary)."""
from collections import OrderedDict
from typing import Callable, Hashable, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor


def weights_fingerprint(modules: Sequence[nn.Module]) -> Tuple:
    """A value that changes whenever any parameter or buffer of ``modules``
    is written.

    Built from each tensor's storage address and autograd version counter:
    every in-place write through autograd-visible tensors bumps
    ``tensor._version`` (optimizer steps, ``load_state_dict``'s
    ``param.copy_``), and ``module.to(...)`` / ``.half()`` replace the
    storage. Writes through ``tensor.data`` are invisible to the version
    counter; call :meth:`TargetEmbeddingCache.clear` after those.
    """
    return tuple((t.data_ptr(), t._version) for m in modules
                 for t in (*m.parameters(), *m.buffers()))


class TargetEmbeddingCache:
    """Remembers target embeddings computed at inference, keyed by what was
    encoded, and forgets them whenever the weights that produced them change.

    Invalidation is by a check of the parameters' versions (see
    :func:`weights_fingerprint`) at every lookup, not by hooks: it needs no
    cooperation from the training loop, catches optimizer steps even when
    the model stays in eval mode, ``load_state_dict`` and device/dtype moves,
    and costs one pass over the parameter list (microseconds) per lookup.

    The cache is plain Python state: it is not in the ``state_dict`` and a
    copied model starts empty.

    Args:
        max_entries: the least recently used entry is dropped beyond this.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Tuple[Tuple, Tensor]] = (
            OrderedDict())
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def get(self, key: Hashable, compute: Callable[[], Tensor],
            modules: Sequence[nn.Module]) -> Tensor:
        """The cached value of ``key`` if ``modules`` are unchanged since it
        was computed, else ``compute()`` (run under ``torch.no_grad``) which
        is stored.

        Args:
            key: what is encoded (e.g. the attribute and the texts).
            compute: returns the (N, D) embeddings.
            modules: the modules whose weights the embeddings depend on.

        Returns:
            Tensor: (N, D), without gradient.
        """
        fingerprint = weights_fingerprint(modules)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == fingerprint:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        with torch.no_grad():
            value = compute()
        self._entries[key] = (fingerprint, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value
