# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""RoBERTa's stand-in for the paper configs' tests (roberta-base is not
available offline)."""
import os.path as osp


def save_tiny_roberta(shapes_root: str, folder: str) -> str:
    """Write a Hugging Face folder with a one-layer, 32-wide RobertaModel
    (random weights, positions for the configs' 128 tokens) and the
    tokenizer of the shapes benchmark at ``shapes_root``.

    Returns:
        str: ``folder``.
    """
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel
    tok = AutoTokenizer.from_pretrained(
        osp.join(shapes_root, 'tokenizer'), local_files_only=True)
    RobertaModel(
        RobertaConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=160, pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
