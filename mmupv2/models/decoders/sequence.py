# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The token segments that make up a unified-decoder input, and the
attention mask they imply."""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

MODALITIES = ('image', 'text')


@dataclass
class TokenSegment:
    """One run of tokens of the unified decoder's input.

    The decoder input is ``[<SPE>; segment_1; segment_2; ...]``; every
    sample of a batch has the same layout (each segment is padded to a
    common length), so all tokens of a segment share one MoE route.

    Attributes:
        tokens (Tensor): (B, L, C) features as the modality encoder gives
            them (``C`` = the decoder's ``image_in_dims`` or
            ``text_in_dims``; the decoder projects them).
        modality (str): ``'image'`` or ``'text'``.
        attribute (str): key of
            :data:`~mmupv2.models.decoders.attributes.MOE_ATTRIBUTES`.
        padding_mask (Tensor, optional): (B, L) bool, True for padding.
        causal (bool): tokens attend only to earlier tokens of this segment
            (plus every non-causal token); no non-causal token attends to
            them, so nothing leaks from the future.
    """
    tokens: Tensor
    modality: str
    attribute: str
    padding_mask: Optional[Tensor] = None
    causal: bool = False

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f'TokenSegment.modality must be one of '
                             f'{MODALITIES}, got {self.modality!r}')
        if self.tokens.dim() != 3:
            raise ValueError('TokenSegment.tokens must be (B, L, C), got '
                             f'shape {tuple(self.tokens.shape)}')
        if self.padding_mask is not None and (self.padding_mask.shape !=
                                              self.tokens.shape[:2]):
            raise ValueError(
                f'TokenSegment.padding_mask shape '
                f'{tuple(self.padding_mask.shape)} != tokens (B, L) '
                f'{tuple(self.tokens.shape[:2])}')


def build_attention_mask(query_causal_id: Tensor, query_pos: Tensor,
                         key_causal_id: Tensor, key_pos: Tensor,
                         key_padding: Optional[Tensor]) -> Optional[Tensor]:
    """Which keys each query may attend to.

    A query attends to every non-causal key, and to the keys of its own
    causal segment that are not after it. Padded keys are never attended.

    Args:
        query_causal_id (Tensor): (Lq,) long, the causal segment of each
            query or -1.
        query_pos (Tensor): (Lq,) long, absolute positions of the queries.
        key_causal_id (Tensor): (Lk,) long, the same for the keys.
        key_pos (Tensor): (Lk,) long, absolute positions of the keys.
        key_padding (Tensor, optional): (B, Lk) bool, True for padding.

    Returns:
        Tensor or None: (B or 1, 1, Lq, Lk) bool, True where attention is
        allowed (``scaled_dot_product_attention``'s convention); None when
        everything is allowed.
    """
    free_key = key_causal_id[None, :] < 0
    same_causal = (key_causal_id[None, :] == query_causal_id[:, None]) & (
        key_pos[None, :] <= query_pos[:, None])
    allowed = (free_key | same_causal)[None, None]  # (1, 1, Lq, Lk)
    if key_padding is not None and bool(key_padding.any()):
        allowed = allowed & ~key_padding[:, None, None, :]
    elif bool(allowed.all()):
        return None
    return allowed


def causal_ids(lengths, causal_flags, device: torch.device) -> Tensor:
    """Per-token causal segment ids of a layout.

    Args:
        lengths (Sequence[int]): tokens per segment (the ``<SPE>`` token
            counted in the first).
        causal_flags (Sequence[bool]): whether each segment is causal.
        device: device of the result.

    Returns:
        Tensor: (sum(lengths),) long, the segment index for tokens of a
        causal segment, -1 elsewhere.
    """
    ids = [
        torch.full((n, ), i if causal else -1, dtype=torch.long)
        for i, (n, causal) in enumerate(zip(lengths, causal_flags))
    ]
    return torch.cat(ids).to(device)
