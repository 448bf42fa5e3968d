# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The key/value cache of the unified decoder (incremental decoding)."""
from dataclasses import dataclass
from typing import List, Optional

from torch import Tensor


@dataclass
class DecoderCache:
    """Keys and values of every decoder layer for the tokens seen so far.

    With it, one step of caption decoding runs the decoder on the new token
    only: its query attends to the cached keys/values, and its own key/value
    is appended. Tensors grow by concatenation (a caption is ~20 tokens; the
    copy is negligible next to the layers).

    Attributes:
        keys (list[Tensor]): per layer (B, H, L, D/H).
        values (list[Tensor]): per layer (B, H, L, D/H).
        causal_id (Tensor): (L,) long, causal segment of each cached token
            or -1 (see :func:`~.sequence.build_attention_mask`).
        key_padding (Tensor, optional): (B, L) bool, True for padding.
        last_attribute (str): MoE attribute of the last segment; new tokens
            continue that segment.
        last_modality (str): its modality.
    """
    keys: List[Tensor]
    values: List[Tensor]
    causal_id: Tensor
    key_padding: Optional[Tensor]
    last_attribute: str
    last_modality: str

    @property
    def length(self) -> int:
        """Number of cached tokens ``L``."""
        return int(self.causal_id.numel())

    def index_select(self, index: Tensor) -> 'DecoderCache':
        """Reorder / repeat the batch (beam search).

        Args:
            index (Tensor): (B',) long, rows of the current batch.

        Returns:
            DecoderCache: a cache with batch size ``B'``.
        """
        return DecoderCache(
            keys=[k.index_select(0, index) for k in self.keys],
            values=[v.index_select(0, index) for v in self.values],
            causal_id=self.causal_id,
            key_padding=None if self.key_padding is None else
            self.key_padding.index_select(0, index),
            last_attribute=self.last_attribute,
            last_modality=self.last_modality)
