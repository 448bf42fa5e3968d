# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The contract between the text encoder and the unified decoder / tasks."""
from dataclasses import dataclass

from torch import Tensor

from mmupv2.models.decoders import TokenSegment


@dataclass
class TextFeatures:
    """``f_text`` of a batch of texts (paper Sec. 4.2), as
    :meth:`~mmupv2.models.UniPerceiverV2.encode_text` returns it.

    Attributes:
        input_ids (Tensor): (N, L) the token ids, right-padded, with the
            tokenizer's begin and end tokens.
        tokens (Tensor): (N, L, C_txt) the text encoder's last hidden
            states.
        padding_mask (Tensor): (N, L) bool, True at padding.
    """
    input_ids: Tensor
    tokens: Tensor
    padding_mask: Tensor

    def segment(self, attribute: str) -> TokenSegment:
        """The texts as a decoder input segment (``'text'`` modality) with
        the MoE ``attribute`` (a key of
        :data:`~mmupv2.models.decoders.attributes.MOE_ATTRIBUTES`)."""
        return TokenSegment(
            self.tokens, 'text', attribute, padding_mask=self.padding_mask)
