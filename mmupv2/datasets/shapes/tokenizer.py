# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A RoBERTa-style byte-level BPE tokenizer trained on the shapes text.

The result is saved with ``save_pretrained`` so that
``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads it exactly as it
would load ``roberta-base``'s tokenizer: same special tokens, same class.
"""
import os
import tempfile

#: RoBERTa's special tokens, in RoBERTa's id order.
SPECIAL_TOKENS = ('<s>', '<pad>', '</s>', '<unk>', '<mask>')


def train_tokenizer(text_file: str, out_dir: str,
                    vocab_size: int = 400) -> None:
    """Train byte-level BPE on ``text_file`` (one text per line) and save a
    ``RobertaTokenizerFast`` to ``out_dir``.

    Args:
        text_file: training text.
        out_dir: output folder (``tokenizer.json``, ``vocab.json``,
            ``merges.txt``, ``tokenizer_config.json``, ...).
        vocab_size: upper bound; merges stop earlier once no pair occurs
            twice, so small corpora give small vocabularies.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train([text_file], vocab_size=vocab_size, min_frequency=2,
              special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = bpe.save_model(tmp)
        tokenizer = RobertaTokenizerFast(
            vocab_file=vocab_file, merges_file=merges_file,
            model_max_length=128)
        tokenizer.save_pretrained(out_dir)
