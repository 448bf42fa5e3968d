# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What the paper configs' tests share: RoBERTa's stand-in (roberta-base is
not available offline), a narrow decoder, the task of a data set."""
import os.path as osp

#: a narrow decoder keeps the builds fast; the MoE setting stays the file's
SMALL_DECODER = dict(
    embed_dims=64, num_layers=1, num_heads=2, feedforward_channels=128)


def dataset_task(dataset: dict) -> str:
    """The task of a data set config: its ``task`` or its type's
    default."""
    from mmupv2.registry import DATASETS
    return dataset.get('task') or DATASETS.get(dataset['type']).default_task


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
