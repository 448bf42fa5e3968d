# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What a task head may use of the model: the paper's steps, nothing else.

A head receives the model as ``model`` and calls only the members of
:class:`TaskModel` (a test reads every ``model.<name>`` in this package and
checks it against the list). :class:`~mmupv2.models.UniPerceiverV2`
implements it; nothing here imports it, so the heads and the model do not
import each other.

::

    encode_image(inputs, data_samples)        f_image: ImageEncoderOutput
    tokenize(texts) / encode_text(ids, mask)  f_text:  TextFeatures
    embed_text(ids, past_length)              f_text's embedding layer
                                              (the causal caption prefix)
    decode([segments])                        g (Eq. 5): DecoderOutput
    encode_targets(texts, attribute)          g(f_text(y)) at <SPE>: (N, D)
    vocabulary_embeddings()                   the vocabulary targets (V', D)
    vocabulary_token_ids() / vocabulary_targets  token id <-> target row
    special_tokens / detokenize(ids)          tokenizer facts, ids -> text
"""
from typing import (
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
    runtime_checkable,
)

from torch import Tensor

from mmupv2.models.decoders import DecoderCache, DecoderOutput, TokenSegment
from mmupv2.models.image_encoders import ImageEncoderOutput
from mmupv2.models.text_encoders import SpecialTokens, TextFeatures
from mmupv2.structures import UPv2DataSample

from .vocabulary import VocabularyTargets

SampleList = List[UPv2DataSample]


@runtime_checkable
class TaskModel(Protocol):
    """The model as the task heads see it (see the module docstring and
    :class:`~mmupv2.models.UniPerceiverV2` for each step's shapes)."""

    #: token id <-> row of the vocabulary targets (captioning, MLM)
    vocabulary_targets: VocabularyTargets

    def encode_image(self,
                     inputs: Optional[Tensor],
                     data_samples: SampleList,
                     *,
                     with_proposal_loss: bool = False
                     ) -> ImageEncoderOutput:
        """``f_image`` of (B, 3, H, W) images (+ the proposal losses)."""

    def tokenize(self,
                 texts: Sequence[str],
                 max_length: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Texts -> (N, L) token ids and (N, L) attention mask."""

    def encode_text(self,
                    texts: Union[Sequence[str], Tensor],
                    attention_mask: Optional[Tensor] = None,
                    *,
                    max_length: Optional[int] = None) -> TextFeatures:
        """``f_text`` of texts or of token ids (N, L)."""

    def embed_text(self, input_ids: Tensor, past_length: int = 0) -> Tensor:
        """(N, L) token ids -> (N, L, C_txt) token embeddings only."""

    def decode(self,
               segments: Sequence[TokenSegment],
               cache: Optional[DecoderCache] = None,
               use_cache: bool = False) -> DecoderOutput:
        """``g([<SPE>; segments])``."""

    def encode_targets(self,
                       texts: Sequence[str],
                       attribute: str = 'text_target',
                       *,
                       per_batch: bool = False) -> Tensor:
        """(N, D) ``<SPE>`` outputs of target texts."""

    def vocabulary_embeddings(self) -> Tensor:
        """(V', D) the vocabulary targets' embeddings."""

    def vocabulary_token_ids(self) -> Tensor:
        """(V',) the token id of each vocabulary target."""

    @property
    def special_tokens(self) -> SpecialTokens:
        """Begin / end / mask / special token ids, vocabulary size."""

    def detokenize(self, token_ids: Sequence[int]) -> str:
        """Token ids -> text without special tokens."""
