# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Validation and test over several named data sets, one evaluator each.

Config contract (``test_*`` alike)::

    val_dataloader = dict(
        imagenet=dict(batch_size=64, dataset=..., sampler=...),
        coco_det=dict(batch_size=2, dataset=..., sampler=...))
    val_evaluator = dict(
        imagenet=dict(type='mmpretrain.Accuracy', topk=(1, 5)),
        coco_det=[dict(type='mmdet.CocoMetric', metric='bbox')])
    val_cfg = dict(type='MultiTaskValLoop')

Every data set is run in turn with its own :class:`~mmengine.evaluator.
Evaluator`, and every metric key is prefixed with the data set's name:
``'imagenet/accuracy/top1'``, ``'coco_det/coco/bbox_mAP'``.
"""
import logging
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import _parse_losses, _update_losses
from torch.utils.data import DataLoader

from mmupv2.registry import LOOPS

from .runner import check_checkpoint_loading

LoaderCfg = Union[DataLoader, Dict]
EvaluatorCfg = Union[Evaluator, Dict, List]


def _is_single_loader(cfg: object) -> bool:
    """Whether ``cfg`` is *one* data loader (object or config): a data loader
    config always has a ``dataset`` key."""
    return isinstance(cfg, DataLoader) or (isinstance(cfg, dict)
                                           and 'dataset' in cfg)


class _MultiDatasetEvalLoop(BaseLoop):
    """Shared body of :class:`MultiTaskValLoop` and :class:`MultiTaskTestLoop`.

    Subclasses set ``stage`` (``'val'`` or ``'test'``): it names the hooks
    (``before_val_iter`` ...), the model step (``val_step``), the config keys
    in error messages (``val_dataloader``) and the loss prefix.

    Attributes:
        dataloaders: ``{data set name: DataLoader}``, in config order.
        evaluators: ``{data set name: Evaluator}``.
        tasks: ``{data set name: task}``, from each data set's ``task``
            attribute (``None`` where a data set has none).
        dataloader: the loader of the data set being run; between runs the
            first data set's (what the Runner reads: ``len()``, metainfo).
        evaluator: the evaluator of :attr:`dataloader`'s data set.
        current: the name of the data set of :attr:`dataloader`.
        fp16: run the model steps under ``autocast``.
    """
    stage: str = ''

    def __init__(self,
                 runner,
                 dataloader: Dict[str, LoaderCfg],
                 evaluator: Dict[str, EvaluatorCfg],
                 fp16: bool = False) -> None:
        # a plain mmengine Runner would read load_from with its own loader
        check_checkpoint_loading(runner)
        # BaseLoop would take the dict of loaders for one loader config
        self._runner = runner
        loop = type(self).__name__
        names = self._check_dataloaders(dataloader, loop)
        self._check_evaluators(evaluator, names, loop)
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        self.dataloaders: Dict[str, DataLoader] = {}
        self.evaluators: Dict[str, Evaluator] = {}
        self.tasks: Dict[str, Optional[str]] = {}
        for name in names:
            loader = dataloader[name]
            if isinstance(loader, dict):
                loader = runner.build_dataloader(
                    loader, seed=runner.seed, diff_rank_seed=diff_rank_seed)
            metric = evaluator[name]
            if not isinstance(metric, Evaluator):
                metric = runner.build_evaluator(metric)
            metainfo = getattr(loader.dataset, 'metainfo', None)
            if metainfo is not None:
                metric.dataset_meta = metainfo
            else:
                print_log(
                    f"{loop}: data set '{name}' "
                    f'({type(loader.dataset).__name__}) has no metainfo; '
                    '``dataset_meta`` of its evaluator will be None.',
                    logger='current',
                    level=logging.WARNING)
            self.dataloaders[name] = loader
            self.evaluators[name] = metric
            self.tasks[name] = getattr(loader.dataset, 'task', None)
        self.fp16 = fp16
        self.losses: Dict[str, Dict[str, HistoryBuffer]] = {}
        self._select(names[0])

    def _check_dataloaders(self, cfg: object, loop: str) -> List[str]:
        """Validate ``<stage>_dataloader`` and return its data set names."""
        key = f'{self.stage}_dataloader'
        if _is_single_loader(cfg):
            raise TypeError(
                f'{loop}: {key} must be a dict {{data set name: data loader '
                f'config}}, got a single data loader; use '
                f"{self.stage}_cfg = dict(type='{self.stage.capitalize()}"
                "Loop') for one data set")
        if not isinstance(cfg, dict) or not cfg:
            raise TypeError(
                f'{loop}: {key} must be a non-empty dict {{data set name: '
                f'data loader config}}, got {cfg!r}')
        for name, loader in cfg.items():
            if not _is_single_loader(loader):
                raise TypeError(
                    f"{loop}: {key}['{name}'] must be a DataLoader or a data "
                    f"loader config with a 'dataset' key, got {loader!r}")
        return list(cfg)

    def _check_evaluators(self, cfg: object, names: Sequence[str],
                          loop: str) -> None:
        """Check that ``<stage>_evaluator`` names the same data sets."""
        key = f'{self.stage}_evaluator'
        if not isinstance(cfg, dict) or 'type' in cfg or 'metrics' in cfg:
            raise TypeError(
                f'{loop}: {key} must be a dict {{data set name: evaluator or '
                f'metric config(s)}} with the names of '
                f'{self.stage}_dataloader ({list(names)}), got {cfg!r}')
        missing = [n for n in names if n not in cfg]
        extra = [n for n in cfg if n not in names]
        if missing or extra:
            raise KeyError(
                f'{loop}: {key} and {self.stage}_dataloader must name the '
                f'same data sets; missing in {key}: {missing}, unknown in '
                f'{key}: {extra}')

    def _select(self, name: str) -> None:
        """Make ``name`` the data set that hooks and the Runner see."""
        self.current = name
        self.dataloader = self.dataloaders[name]
        self.evaluator = self.evaluators[name]
        metainfo = getattr(self.dataloader.dataset, 'metainfo', None)
        if metainfo is not None:
            self.runner.visualizer.dataset_meta = metainfo

    def run(self) -> Dict[str, object]:
        """Run every data set and evaluate it.

        Hooks are called as by mmengine's ``ValLoop`` / ``TestLoop``:
        ``before_<stage>`` and ``before_<stage>_epoch`` once, the iteration
        hooks for every batch of every data set (``batch_idx`` restarts at 0
        per data set, and :attr:`dataloader` is that data set's loader),
        then ``after_<stage>_epoch(metrics)`` with all metrics and
        ``after_<stage>``.

        Returns:
            dict: ``{'<data set>/<metric key>': value}`` for every data set,
            plus ``'<data set>/<stage>_loss'`` and the loss terms where the
            model returns losses from its ``<stage>_step``.
        """
        stage = self.stage
        self.runner.call_hook(f'before_{stage}')
        self.runner.call_hook(f'before_{stage}_epoch')
        self.runner.model.eval()
        self.losses = {}
        metrics: Dict[str, object] = {}
        for name in self.dataloaders:
            self._select(name)
            self.losses[name] = {}
            print_log(
                f"{type(self).__name__}: data set '{name}' (task "
                f'{self.tasks[name]}, {len(self.dataloader.dataset)} '
                'samples)',
                logger='current')
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
            result = self.evaluator.evaluate(len(self.dataloader.dataset))
            if self.losses[name]:
                result.update(_parse_losses(self.losses[name], stage))
            metrics.update({f'{name}/{k}': v for k, v in result.items()})
        self._select(next(iter(self.dataloaders)))
        self.runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{stage}')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Union[dict, Sequence]) -> None:
        """Predict one batch of the current data set and feed its evaluator.

        Args:
            idx: the batch's index in the current data set's loader.
            data_batch: a collated batch, e.g. ``dict(inputs=(B, ...) tensor
                or list of B tensors, data_samples=list of B samples)``.
        """
        stage = self.stage
        self.runner.call_hook(
            f'before_{stage}_iter', batch_idx=idx, data_batch=data_batch)
        step = getattr(self.runner.model, f'{stage}_step')
        with autocast(enabled=self.fp16):
            outputs = step(data_batch)
        outputs, self.losses[self.current] = _update_losses(
            outputs, self.losses[self.current])
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            f'after_{stage}_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)


@LOOPS.register_module()
class MultiTaskValLoop(_MultiDatasetEvalLoop):
    """Validation over several named data sets (mmengine's ``ValLoop``, once
    per data set).

    Config::

        val_dataloader = dict(cls=dict(dataset=..., ...), ret=dict(...))
        val_evaluator = dict(cls=dict(type='mmpretrain.Accuracy'),
                             ret=[dict(...), dict(...)])
        val_cfg = dict(type='MultiTaskValLoop')

    Metrics are returned (and logged) as ``'<data set>/<metric key>'``.

    Args:
        runner: the Runner.
        dataloader: ``val_dataloader``: ``{data set name: DataLoader or data
            loader config}``.
        evaluator: ``val_evaluator``: ``{data set name: Evaluator, evaluator
            config or list of metric configs}``, the same names.
        fp16: run ``val_step`` under ``autocast``.

    Raises:
        TypeError: ``val_dataloader`` is a single data loader (use
            ``ValLoop``) or ``val_evaluator`` is not keyed by data set.
        KeyError: the names of the two dicts differ.
    """
    stage = 'val'


@LOOPS.register_module()
class MultiTaskTestLoop(_MultiDatasetEvalLoop):
    """Test over several named data sets (mmengine's ``TestLoop``, once per
    data set); the ``test_*`` counterpart of :class:`MultiTaskValLoop`.

    Args:
        runner: the Runner.
        dataloader: ``test_dataloader``: ``{data set name: DataLoader or data
            loader config}``.
        evaluator: ``test_evaluator``: ``{data set name: Evaluator, evaluator
            config or list of metric configs}``, the same names.
        fp16: run ``test_step`` under ``autocast``.

    Raises:
        TypeError: ``test_dataloader`` is a single data loader (use
            ``TestLoop``) or ``test_evaluator`` is not keyed by data set.
        KeyError: the names of the two dicts differ.
    """
    stage = 'test'
