# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Synthetic stand-ins for what cannot be fetched on a machine without a
model hub: RoBERTa-base's architecture with a byte-level BPE tokenizer of
exactly its size, and random batches of every task as their data loaders
give them (``benchmark_gpu.py``, ``step_cost.py``)."""
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
import torch

#: RoBERTa-base's architecture (``roberta-base``'s config.json), for
#: ``HFTextEncoder(hf_config=..., load_pretrained=False)``
ROBERTA_BASE = dict(model_type='roberta', hidden_size=768,
                    num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=514,
                    type_vocab_size=1, layer_norm_eps=1e-5)
#: RoBERTa's vocabulary size (its full-vocabulary captioning targets)
ROBERTA_VOCAB = 50265



def roberta_base_text_encoder(tokenizer: str, max_length: int = 128,
                              **hf_overrides) -> dict:
    """The config of an ``HFTextEncoder`` with RoBERTa-base's architecture
    (:data:`ROBERTA_BASE`, ``hf_overrides`` changed) and random weights
    over the tokenizer folder ``tokenizer`` (e.g. a
    :func:`synthetic_bpe_tokenizer` of :data:`ROBERTA_VOCAB` tokens): what
    ``roberta-base`` costs, without the hub."""
    return dict(type='HFTextEncoder', tokenizer=tokenizer,
                load_pretrained=False, max_length=max_length,
                hf_config=dict(ROBERTA_BASE, **hf_overrides))

def synthetic_bpe_tokenizer(out_dir: str, vocab_size: int) -> str:
    """A RoBERTa-style byte-level BPE tokenizer with exactly ``vocab_size``
    tokens (RoBERTa's 5 special tokens, the 256 byte symbols, then merges
    that build every 1-3 letter word with and without a leading space, and
    longer ones until the size is reached): any text tokenizes, a 3-letter
    word is one token. Saved as a ``RobertaTokenizerFast`` folder."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizerFast

    from mmupv2.datasets.shapes.tokenizer import SPECIAL_TOKENS
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
    letters = 'abcdefghijklmnopqrstuvwxyz'
    merges: List[Tuple[str, str]] = []

    def stems():
        yield from (('\u0120', x) for x in letters)
        yield from (('\u0120' + x, y) for x in letters for y in letters)
        yield from (('\u0120' + x + y, z) for x in letters for y in letters
                    for z in letters)
        yield from ((x, y) for x in letters for y in letters)
        yield from ((x + y, z) for x in letters for y in letters
                    for z in letters)
        yield from (('\u0120' + x + y + z, v) for x in letters
                    for y in letters for z in letters for v in letters)

    for a, b in stems():
        if len(vocab) >= vocab_size:
            break
        merges.append((a, b))
        vocab[a + b] = len(vocab)
    if len(vocab) != vocab_size:
        raise ValueError(f'cannot build {vocab_size} tokens')
    os.makedirs(out_dir, exist_ok=True)
    vocab_file = osp.join(out_dir, 'vocab.json')
    merges_file = osp.join(out_dir, 'merges.txt')
    with open(vocab_file, 'w') as f:
        json.dump(vocab, f)
    with open(merges_file, 'w') as f:
        f.write('#version: 0.2\n')
        f.writelines(f'{a} {b}\n' for a, b in merges)
    RobertaTokenizerFast(vocab_file=vocab_file, merges_file=merges_file,
                         model_max_length=512).save_pretrained(out_dir)
    return out_dir


def random_caption(rng: np.random.Generator, words: int = 12) -> str:
    letters = list('abcdefghijklmnopqrstuvwxyz')
    return ' '.join(''.join(rng.choice(letters, 3)) for _ in range(words))


def synthetic_batch(task: str, batch: int, size: Tuple[int, int],
                    num_classes: int, seed: int, words: int = 12) -> dict:
    """A collated batch as the task's data loader gives it: random images
    (none for MLM) packed by ``PackUPv2Inputs`` with labels / boxes + masks
    / captions of ``words`` random 3-letter words / MLM texts of as many
    words."""
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks

    from mmupv2.datasets.transforms import PackUPv2Inputs
    pack = PackUPv2Inputs()
    rng = np.random.default_rng(seed)
    h, w = size
    inputs, samples = [], []
    for i in range(batch):
        if task == 'mlm':  # a text of the corpus, no image
            packed = pack.transform(
                dict(text=random_caption(rng, words), task=task,
                     dataset_name='synthetic'))
            samples.append(packed['data_samples'])
            continue
        results = dict(
            img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
            task=task, dataset_name='synthetic', img_id=i, flip=False,
            flip_direction=None, img_path=f'synthetic_{i}.jpg')
        if task == 'classification':
            results['gt_label'] = int(rng.integers(num_classes))
        elif task in ('detection', 'instance_segmentation'):
            n = 7  # COCO's mean objects per image
            x1 = rng.uniform(0, 0.6, n) * w
            y1 = rng.uniform(0, 0.6, n) * h
            bw = rng.uniform(0.05, 0.4, n) * w
            bh = rng.uniform(0.05, 0.4, n) * h
            boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1).astype(
                np.float32)
            masks = np.zeros((n, h, w), np.uint8)
            for k, (a, b, c, d) in enumerate(boxes.astype(int)):
                masks[k, b:d, a:c] = 1
            results.update(
                gt_bboxes=HorizontalBoxes(torch.from_numpy(boxes)),
                gt_bboxes_labels=rng.integers(num_classes, size=n),
                gt_masks=BitmapMasks(masks, h, w),
                gt_ignore_flags=np.zeros(n, bool))
        else:  # captioning, retrieval
            caption = random_caption(rng, words)
            results['gt_caption'] = caption
            if task == 'retrieval':
                results['text'] = caption
        packed = pack.transform(results)
        inputs.append(packed['inputs'])
        samples.append(packed['data_samples'])
    return dict(inputs=inputs or None, data_samples=samples)
