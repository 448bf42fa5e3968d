# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The token ids of the captioning / MLM training texts, cached on disk."""
import json
import os

import pytest
from transformers import AutoTokenizer

from mmupv2.datasets import (
    KarpathyCaptionDataset,
    KarpathyRetrievalDataset,
    TextLinesDataset,
    vocabulary_from_datasets,
)
from mmupv2.datasets.vocabulary import CACHE_ENV

TRAIN_CAPTIONS = ['a red circle above a blue square', 'two green stars']
VAL_CAPTION = 'a purple unicorn'  # another split: not a training text
LINES = ['a yellow triangle', 'the big hexagon']


def write_tiny_data(root) -> dict:
    """A Karpathy file (one train and one val image) and a text file."""
    karpathy = dict(images=[
        dict(filename='0.png', imgid=0, split='train',
             sentences=[dict(raw=c, sentid=i)
                        for i, c in enumerate(TRAIN_CAPTIONS)]),
        dict(filename='1.png', imgid=1, split='val',
             sentences=[dict(raw=VAL_CAPTION, sentid=2)]),
    ])
    ann = root / 'karpathy.json'
    ann.write_text(json.dumps(karpathy))
    text = root / 'corpus.txt'
    text.write_text('\n'.join(LINES) + '\n')
    return dict(karpathy=str(ann), text=str(text))


def build_datasets(files: dict, lazy_init: bool = False) -> list:
    return [
        KarpathyCaptionDataset(ann_file=files['karpathy'], split='train',
                               lazy_init=lazy_init),
        TextLinesDataset(ann_file=files['text'], lazy_init=lazy_init),
        # retrieval has no vocabulary targets: skipped
        KarpathyRetrievalDataset(ann_file=files['karpathy'], split='val',
                                 lazy_init=lazy_init),
    ]


@pytest.fixture
def tokenizer(shapes_root):
    return AutoTokenizer.from_pretrained(f'{shapes_root}/tokenizer')


def expected_ids(tokenizer, texts) -> list:
    return sorted({
        i for t in texts
        for i in tokenizer(t, add_special_tokens=False)['input_ids']
    })


def test_ids_of_the_training_texts(tmp_path, tokenizer):
    files = write_tiny_data(tmp_path)
    result = vocabulary_from_datasets(build_datasets(files), tokenizer,
                                      use_cache=False)
    assert result.token_ids == expected_ids(tokenizer,
                                            TRAIN_CAPTIONS + LINES)
    assert not set(result.token_ids) >= set(
        expected_ids(tokenizer, [VAL_CAPTION]))
    assert result.num_texts == len(TRAIN_CAPTIONS) + len(LINES)
    assert result.cache_file is None and not result.from_cache


def test_cache_hit_then_miss_on_changed_data(tmp_path, tokenizer):
    files = write_tiny_data(tmp_path)
    cache = tmp_path / 'cache'
    first = vocabulary_from_datasets(build_datasets(files), tokenizer,
                                     cache_dir=str(cache))
    assert not first.from_cache and os.path.isfile(first.cache_file)
    assert json.load(open(first.cache_file))['token_ids'] == first.token_ids

    # a second start-up reads the list without loading the annotations,
    # also after the tokenizer was called with padding and truncation
    # (which change its settings, not its ids)
    tokenizer(['a red circle'], padding='longest', truncation=True,
              max_length=8)
    lazy = build_datasets(files, lazy_init=True)
    second = vocabulary_from_datasets(lazy, tokenizer, cache_dir=str(cache))
    assert second.from_cache and second.cache_file == first.cache_file
    assert second.token_ids == first.token_ids and second.num_texts == 0
    assert not any(ds._fully_initialized for ds in lazy)

    # other data: another key
    with open(files['text'], 'a') as f:
        f.write('an orange pentagon\n')
    third = vocabulary_from_datasets(build_datasets(files), tokenizer,
                                     cache_dir=str(cache))
    assert not third.from_cache and third.cache_file != first.cache_file
    assert third.token_ids == expected_ids(
        tokenizer, TRAIN_CAPTIONS + LINES + ['an orange pentagon'])


def test_cache_folder_from_environment(tmp_path, tokenizer, monkeypatch):
    files = write_tiny_data(tmp_path)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'env_cache'))
    result = vocabulary_from_datasets(build_datasets(files), tokenizer)
    assert result.cache_file.startswith(str(tmp_path / 'env_cache'))


def test_unreadable_cache_is_recomputed(tmp_path, tokenizer):
    files = write_tiny_data(tmp_path)
    first = vocabulary_from_datasets(build_datasets(files), tokenizer,
                                     cache_dir=str(tmp_path))
    with open(first.cache_file, 'w') as f:
        f.write('{not json')
    again = vocabulary_from_datasets(build_datasets(files), tokenizer,
                                     cache_dir=str(tmp_path))
    assert not again.from_cache and again.token_ids == first.token_ids


def test_needs_a_captioning_or_mlm_data_set(tmp_path, tokenizer):
    files = write_tiny_data(tmp_path)
    with pytest.raises(ValueError, match='captioning / mlm'):
        vocabulary_from_datasets(build_datasets(files)[2:], tokenizer)
