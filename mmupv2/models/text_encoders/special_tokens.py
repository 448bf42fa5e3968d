# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The begin and end tokens of a text, whatever the tokenizer's family.

RoBERTa's byte-level BPE has ``<s>`` / ``</s>`` as ``bos`` / ``eos`` (and as
``cls`` / ``sep``); BERT's WordPiece (MiniLM) has only ``[CLS]`` /
``[SEP]``, with ``bos_token_id = eos_token_id = None``. Every place that
needs the start or the end of a text (caption decoding, the banned ids, the
cut at the end token, the vocabulary targets ``[begin, token, end]``) asks
:func:`text_boundary_ids`, so both families behave alike. The tasks see
these facts only as a :class:`SpecialTokens` (``model.special_tokens``).
"""
from dataclasses import dataclass
from typing import Optional, Tuple


def text_boundary_ids(tokenizer) -> Tuple[int, int]:
    """``(begin, end)`` token ids: ``bos`` / ``eos``, else ``cls`` / ``sep``.

    Args:
        tokenizer: a Hugging Face tokenizer.

    Returns:
        tuple[int, int]: the id that starts a text and the id that ends it.

    Raises:
        ValueError: the tokenizer has neither (names which is missing).
    """
    begin = tokenizer.bos_token_id
    if begin is None:
        begin = tokenizer.cls_token_id
    end = tokenizer.eos_token_id
    if end is None:
        end = tokenizer.sep_token_id
    missing = [
        name for name, value in (('begin (bos_token or cls_token)', begin),
                                 ('end (eos_token or sep_token)', end))
        if value is None
    ]
    if missing:
        raise ValueError(
            f'the tokenizer {getattr(tokenizer, "name_or_path", "")!r} '
            f'({type(tokenizer).__name__}) has no {" and no ".join(missing)}'
            ' token; captioning and the vocabulary targets need both')
    return int(begin), int(end)


@dataclass(frozen=True)
class SpecialTokens:
    """The tokenizer facts that captioning and MLM need, and nothing more
    (the tasks never touch the tokenizer itself).

    Attributes:
        begin_id (int): the token that starts a text (``<s>`` / ``[CLS]``).
        end_id (int): the token that ends a text (``</s>`` / ``[SEP]``);
            captioning's stop token.
        mask_id (int, optional): the mask token (``<mask>`` / ``[MASK]``)
            of MLM; None if the tokenizer has none.
        special_ids (tuple[int, ...]): every special token id (begin, end,
            padding, mask, unknown ...), sorted.
        vocab_size (int): the number of token ids, ``len(tokenizer)``.
    """
    begin_id: int
    end_id: int
    mask_id: Optional[int]
    special_ids: Tuple[int, ...]
    vocab_size: int


def special_tokens_of(tokenizer) -> SpecialTokens:
    """The :class:`SpecialTokens` of a Hugging Face tokenizer.

    Raises:
        ValueError: the tokenizer has no begin or no end token (see
            :func:`text_boundary_ids`).
    """
    begin, end = text_boundary_ids(tokenizer)
    return SpecialTokens(
        begin_id=begin,
        end_id=end,
        mask_id=tokenizer.mask_token_id,
        special_ids=tuple(sorted(set(tokenizer.all_special_ids))),
        vocab_size=len(tokenizer))
