# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Sets the ``vocabulary='data'`` target subset from the training data."""
from typing import List, Optional

from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from mmupv2.datasets.vocabulary import (
    VOCABULARY_TASKS,
    vocabulary_datasets,
    vocabulary_from_datasets,
)
from mmupv2.registry import DATASETS, HOOKS


def _leaf_dataset_cfgs(cfg: dict) -> List[dict]:
    """The data set configs inside ``ConcatDataset`` (``datasets``) and
    ``RepeatDataset`` / ``ClassBalancedDataset`` (``dataset``) configs."""
    if isinstance(cfg.get('datasets'), (list, tuple)):
        return [c for d in cfg['datasets'] for c in _leaf_dataset_cfgs(d)]
    if isinstance(cfg.get('dataset'), dict):
        return _leaf_dataset_cfgs(cfg['dataset'])
    return [cfg]


def _cfg_task(cfg: dict) -> Optional[str]:
    """The task of a data set config: ``task=...`` or its class's
    ``default_task``."""
    if cfg.get('task'):
        return cfg['task']
    cls = cfg.get('type')
    if isinstance(cls, str):
        cls = DATASETS.get(cls)
    return getattr(cls, 'default_task', None)


def train_dataset_cfgs(train_dataloader: Optional[dict]) -> List[dict]:
    """The captioning / MLM data set configs of a ``train_dataloader``
    config: ``MultiTaskLoop``'s ``{entry: dict(dataloader=dict(dataset=...))}``
    or a single ``dict(dataset=...)``."""
    if not train_dataloader:
        return []
    if 'dataset' in train_dataloader:
        roots = [train_dataloader['dataset']]
    else:
        roots = [
            entry['dataloader']['dataset']
            for entry in train_dataloader.values()
            if isinstance(entry, dict) and isinstance(
                entry.get('dataloader'), dict)
            and 'dataset' in entry['dataloader']
        ]
    return [
        cfg for root in roots for cfg in _leaf_dataset_cfgs(dict(root))
        if _cfg_task(cfg) in VOCABULARY_TASKS
    ]


@HOOKS.register_module()
class VocabularyFromDataHook(Hook):
    """Derive the vocabulary targets of a ``vocabulary='data'`` model from
    its training data.

    ::

        before_train:        the train loop's data sets (every entry of
                             MultiTaskLoop whose task is captioning / mlm)
        before_val / _test:  only if the subset is still empty (no
                             checkpoint restored it): the same data sets,
                             built from cfg.train_dataloader (lazy_init)
            -> vocabulary_from_datasets (cached on disk, see
               mmupv2/datasets/vocabulary.py) on rank 0
            -> broadcast to every rank -> model.set_vocabulary(ids)

    Does nothing for a ``vocabulary='full'`` model. The ids are sorted, so
    the subset (and its embedding rows) are the same on every rank and in
    every run on the same data; the log names the subset size and the cache
    file. Pointing the config at other training data needs no other change:
    the cache key follows the annotation files.

    Config::

        model = dict(type='UniPerceiverV2', vocabulary='data', ...)
        custom_hooks = [dict(type='VocabularyFromDataHook')]

    Args:
        cache_dir: folder of the cached id lists; default
            ``$MMUPV2_VOCABULARY_CACHE`` or ``~/.cache/mmupv2/vocabulary``.
        use_cache: read / write the cache (False: tokenise every start).
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 cache_dir: Optional[str] = None,
                 use_cache: bool = True) -> None:
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    @staticmethod
    def _model(runner):
        """The model if it uses ``vocabulary='data'``, else None."""
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if getattr(model, 'vocabulary', 'full') != 'data':
            return None
        return model

    @staticmethod
    def _loop_datasets(loop) -> list:
        entries = getattr(loop, 'entries', None)
        if entries is not None:
            return [e.dataloader.dataset for e in entries]
        return [loop.dataloader.dataset]

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if model is None:
            return
        datasets = vocabulary_datasets(self._loop_datasets(runner.train_loop))
        if not datasets:  # e.g. a run of the localization tasks alone
            runner.logger.warning(
                'VocabularyFromDataHook: no captioning / mlm entry among the '
                'training data; the vocabulary targets stay unset (set them '
                'with model.set_vocabulary(token_ids) before captioning)')
            return
        self._set(runner, model, datasets)

    def before_val(self, runner) -> None:
        self._fill_if_empty(runner)

    def before_test(self, runner) -> None:
        self._fill_if_empty(runner)

    def _fill_if_empty(self, runner) -> None:
        model = self._model(runner)
        if model is None or model.vocabulary_targets.is_set:
            return
        if isinstance(runner._train_loop, BaseLoop):
            datasets = self._loop_datasets(runner._train_loop)
        else:
            datasets = [
                DATASETS.build(dict(cfg, lazy_init=True))
                for cfg in train_dataset_cfgs(
                    runner.cfg.get('train_dataloader'))
            ]
        if not vocabulary_datasets(datasets):
            runner.logger.warning(
                "VocabularyFromDataHook: the model uses vocabulary='data' "
                'but its subset is empty and no captioning / mlm training '
                'data is configured: load a checkpoint trained with it or '
                'call model.set_vocabulary(token_ids)')
            return
        self._set(runner, model, datasets)

    def _set(self, runner, model, datasets: list) -> None:
        """Derive on rank 0, broadcast, set; log what was done."""
        result = None
        if get_rank() == 0:
            result = vocabulary_from_datasets(
                datasets, model.text_encoder.tokenizer, self.cache_dir,
                self.use_cache)
        ids = [result.token_ids if result is not None else None]
        broadcast_object_list(ids)
        model.set_vocabulary(ids[0])
        if result is not None:
            source = (f'read from {result.cache_file}' if result.from_cache
                      else f'{result.num_texts} texts tokenised' +
                      (f', cached in {result.cache_file}'
                       if result.cache_file else ''))
            runner.logger.info(
                f'VocabularyFromDataHook: {len(model.vocabulary_targets)} '
                f'vocabulary targets of {model.vocabulary_targets.vocab_size}'
                f' tokens ({source})')
