# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The token ids of the training texts: the ``vocabulary='data'`` target set
of captioning and MLM, derived from the data sets and cached on disk.

::

    data sets (captioning: gt_caption, mlm: text) -- unwrap Concat/Repeat --
        key = sha1(tokenizer name + tokenizer.json, each data set's class,
                   task, ann_file path / size / mtime, split, indices)
        <cache_dir>/<key>.json hit?  -> token ids
        else tokenise every text (no special tokens) -> sorted unique ids
             -> written to <cache_dir>/<key>.json (atomically)

The cache folder is ``cache_dir``, else ``$MMUPV2_VOCABULARY_CACHE``, else
``~/.cache/mmupv2/vocabulary``. Any change of an annotation file (size or
modification time) or of the tokenizer gives another key, so a stale list is
never read.
"""
import hashlib
import json
import os
import os.path as osp
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from mmengine.logging import print_log

#: the tasks whose targets are vocabulary tokens, and the data field that
#: holds their texts (what the task heads read)
VOCABULARY_TASKS: Dict[str, str] = {'captioning': 'gt_caption', 'mlm': 'text'}

#: the environment variable naming the cache folder
CACHE_ENV = 'MMUPV2_VOCABULARY_CACHE'

#: bumped when the cache file's content changes meaning
CACHE_FORMAT = 1

_TOKENIZE_CHUNK = 4096


@dataclass
class DataVocabulary:
    """The token ids of a set of training texts.

    Attributes:
        token_ids: sorted unique token ids (no special token added; an
            ``[UNK]`` of the texts is kept).
        num_texts: texts tokenised (0 when read from the cache).
        cache_file: the cache file read or written (None without cache).
        from_cache: whether the ids came from the cache.
    """
    token_ids: List[int]
    num_texts: int
    cache_file: Optional[str]
    from_cache: bool


def default_cache_dir() -> str:
    """``$MMUPV2_VOCABULARY_CACHE`` or ``~/.cache/mmupv2/vocabulary``."""
    return os.environ.get(CACHE_ENV) or osp.join(
        osp.expanduser('~'), '.cache', 'mmupv2', 'vocabulary')


def leaf_datasets(dataset) -> Iterator:
    """The data sets inside mmengine's ``ConcatDataset`` (``datasets``) and
    ``RepeatDataset`` / ``ClassBalancedDataset`` (``dataset``) wrappers."""
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        for ds in inner:
            yield from leaf_datasets(ds)
    elif hasattr(dataset, 'dataset') and not hasattr(dataset, 'task'):
        yield from leaf_datasets(dataset.dataset)
    else:
        yield dataset


def vocabulary_datasets(datasets: Iterable) -> List:
    """The (unwrapped) data sets of ``datasets`` whose task has vocabulary
    targets (:data:`VOCABULARY_TASKS`)."""
    return [
        ds for dataset in datasets for ds in leaf_datasets(dataset)
        if getattr(ds, 'task', None) in VOCABULARY_TASKS
    ]


def dataset_texts(dataset) -> List[str]:
    """Every text of ``dataset`` its task trains on (``gt_caption`` for
    captioning, ``text`` for MLM; a str or a list of str per sample).

    Raises:
        KeyError: a sample lacks the field (names the data set and index).
    """
    field = VOCABULARY_TASKS[dataset.task]
    if not getattr(dataset, '_fully_initialized', True):
        dataset.full_init()
    texts = []
    for idx in range(len(dataset)):
        value = dataset.get_data_info(idx).get(field)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, (list, tuple)) and all(
                isinstance(v, str) for v in value):
            texts.extend(value)
        else:
            raise KeyError(
                f'{type(dataset).__name__} ({getattr(dataset, "ann_file", "")}'
                f'): sample {idx} of task {dataset.task!r} needs {field!r} '
                f'(str or list of str), got {value!r}')
    return texts


def _file_stat(path: str) -> dict:
    if path and osp.isfile(path):
        stat = os.stat(path)
        return dict(path=osp.abspath(path), size=stat.st_size,
                    mtime_ns=stat.st_mtime_ns)
    return dict(path=path)


def _tokenizer_digest(tokenizer) -> str:
    """sha1 of the tokenizer's definition (``tokenizer.json`` for a fast
    tokenizer: vocabulary, normaliser, pre-tokeniser, ...; else the
    vocabulary). The padding and truncation settings are left out: every
    call of the tokenizer changes them, and they change no token id."""
    backend = getattr(tokenizer, 'backend_tokenizer', None)
    if backend is not None:
        definition = json.loads(backend.to_str())
        definition.pop('padding', None)
        definition.pop('truncation', None)
    else:
        definition = sorted(tokenizer.get_vocab().items())
    text = json.dumps(definition, sort_keys=True)
    return hashlib.sha1(text.encode('utf-8')).hexdigest()


def vocabulary_sources(datasets: Sequence, tokenizer) -> dict:
    """What the token ids depend on (hashed into the cache key): the
    tokenizer and, per data set, its class, task, annotation file (path,
    size, modification time), split and index subset."""
    sources = []
    for ds in datasets:
        splits = getattr(ds, 'splits', None)
        indices = getattr(ds, '_indices', None)
        sources.append(
            dict(type=type(ds).__name__, task=ds.task,
                 ann_file=_file_stat(getattr(ds, 'ann_file', '') or ''),
                 split=list(splits) if splits else None,
                 min_chars=getattr(ds, 'min_chars', None),
                 indices=indices if indices is None
                 or isinstance(indices, int) else list(indices)))
    return dict(
        format=CACHE_FORMAT,
        tokenizer=dict(name=getattr(tokenizer, 'name_or_path', ''),
                       type=type(tokenizer).__name__, size=len(tokenizer),
                       sha1=_tokenizer_digest(tokenizer)),
        datasets=sources)


def tokenize_vocabulary(texts: Sequence[str], tokenizer) -> List[int]:
    """Sorted unique ids of the tokens of ``texts`` (no special tokens
    added, no truncation)."""
    ids = set()
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        batch = list(texts[start:start + _TOKENIZE_CHUNK])
        for row in tokenizer(batch, add_special_tokens=False)['input_ids']:
            ids.update(row)
    return sorted(int(i) for i in ids)


def _read_cache(path: str) -> Optional[List[int]]:
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            ids = json.load(f)['token_ids']
    except (OSError, ValueError, KeyError, TypeError) as e:
        print_log(f'vocabulary cache {path} is unreadable ({e}); '
                  'recomputing it', logger='current', level=30)
        return None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        print_log(f'vocabulary cache {path}: token_ids is not a list of int;'
                  ' recomputing it', logger='current', level=30)
        return None
    return ids


def _write_cache(path: str, content: dict) -> None:
    """Write atomically (a temporary file renamed), so that ranks or runs
    starting together never read half a file."""
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(content, f)
    os.replace(tmp, path)


def vocabulary_from_datasets(datasets: Iterable,
                             tokenizer,
                             cache_dir: Optional[str] = None,
                             use_cache: bool = True) -> DataVocabulary:
    """The token ids of the texts of the captioning / MLM data sets among
    ``datasets`` (others are skipped), read from or written to the cache.

    Data sets may be built with ``lazy_init=True``: their annotations are
    only loaded on a cache miss.

    Args:
        datasets: mmupv2 data sets (``task`` attribute), possibly wrapped.
        tokenizer: the text encoder's tokenizer.
        cache_dir: cache folder; default :func:`default_cache_dir`.
        use_cache: read and write the cache.

    Returns:
        DataVocabulary: the ids and where they came from.

    Raises:
        ValueError: no captioning / MLM data set among ``datasets``.
    """
    datasets = vocabulary_datasets(datasets)
    if not datasets:
        raise ValueError(
            'vocabulary from data: no training data set of task '
            f'{" / ".join(VOCABULARY_TASKS)} to take the tokens from')
    cache_file = None
    if use_cache:
        sources = vocabulary_sources(datasets, tokenizer)
        key = hashlib.sha1(
            json.dumps(sources, sort_keys=True).encode('utf-8')).hexdigest()
        cache_file = osp.join(cache_dir or default_cache_dir(),
                              f'{key}.json')
        cached = _read_cache(cache_file)
        if cached is not None:
            return DataVocabulary(cached, 0, cache_file, True)
    texts = [text for ds in datasets for text in dataset_texts(ds)]
    token_ids = tokenize_vocabulary(texts, tokenizer)
    if cache_file is not None:
        _write_cache(cache_file,
                     dict(sources, token_ids=token_ids,
                          num_texts=len(texts)))
    return DataVocabulary(token_ids, len(texts), cache_file, False)
