# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A first-in-first-out memory of past retrieval features (extra negatives).

mmpretrain's ``ITCHead`` (BLIP / ALBEF) keeps such a queue of momentum
features; this one stores the training features themselves (no momentum
encoder, as XBM, Wang et al., CVPR 2020), which costs nothing per step.
"""
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

#: ``ids`` of slots that hold no feature yet.
EMPTY_ID = -1


class FeatureQueue(nn.Module):
    """The last ``size`` (image, text, image id) triples of training.

    The buffers are part of the state dict, so a resumed run continues
    with the same negatives (bitwise resume). The feature dimension D is
    taken from the first batch pushed (or from a loaded state dict), so a
    config needs no copy of the decoder's width.

    Args:
        size (int): number of pairs kept (> 0).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        if size <= 0:
            raise ValueError(f'FeatureQueue: size must be > 0, got {size}')
        self.size = size
        self.register_buffer('image_feats', torch.zeros(size, 0))
        self.register_buffer('text_feats', torch.zeros(size, 0))
        self.register_buffer('ids', torch.full((size, ), EMPTY_ID,
                                               dtype=torch.long))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))

    def filled(self) -> Tuple[Tensor, Tensor, Tensor]:
        """The stored features (in slot order).

        Returns:
            tuple: (M, D) image features, (M, D) text features, (M,) image
            ids, for the M <= size slots filled so far; detached.
        """
        keep = self.ids != EMPTY_ID
        return (self.image_feats[keep].detach(),
                self.text_feats[keep].detach(), self.ids[keep])

    @torch.no_grad()
    def push(self, image: Tensor, text: Tensor, ids: Tensor) -> None:
        """Overwrite the oldest slots with a batch (wrapping around).

        Args:
            image (Tensor): (N, D) normalised image features.
            text (Tensor): (N, D) normalised text features of the pairs.
            ids (Tensor): (N,) image ids (>= 0) of the pairs.
        """
        if self.image_feats.shape[1] != image.shape[1]:
            self._resize(image.shape[1])
        if image.shape[0] > self.size:  # keep the newest ``size``
            image, text, ids = (image[-self.size:], text[-self.size:],
                                ids[-self.size:])
        slots = (self.ptr + torch.arange(image.shape[0],
                                         device=self.ptr.device)) % self.size
        self.image_feats[slots] = image.detach().to(self.image_feats.dtype)
        self.text_feats[slots] = text.detach().to(self.text_feats.dtype)
        self.ids[slots] = ids.to(self.ids.device)
        self.ptr.copy_((self.ptr + image.shape[0]) % self.size)

    def _resize(self, dims: int) -> None:
        """Empty (size, dims) feature buffers, all slots free."""
        device = self.image_feats.device
        self.image_feats = torch.zeros(self.size, dims, device=device)
        self.text_feats = torch.zeros(self.size, dims, device=device)
        self.ids.fill_(EMPTY_ID)
        self.ptr.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Take D from the checkpoint before copying into the buffers."""
        feats = state_dict.get(prefix + 'image_feats')
        if feats is not None and feats.shape[0] == self.size and (
                feats.shape[1] != self.image_feats.shape[1]):
            self._resize(feats.shape[1])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
