# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The begin and end tokens of a text, whatever the tokenizer's family.

RoBERTa's byte-level BPE has ``<s>`` / ``</s>`` as ``bos`` / ``eos`` (and as
``cls`` / ``sep``); BERT's WordPiece (MiniLM) has only ``[CLS]`` /
``[SEP]``, with ``bos_token_id = eos_token_id = None``. Every place that
needs the start or the end of a text (caption decoding, the banned ids, the
cut at the end token, the vocabulary targets ``[begin, token, end]``) asks
:func:`text_boundary_ids`, so both families behave alike.
"""
from typing import Tuple


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
