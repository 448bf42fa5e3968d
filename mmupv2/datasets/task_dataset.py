# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The mixin that tags every sample of a data set with its task."""
import os.path as osp
from typing import Optional

from mmupv2.registry import TRANSFORMS
from mmupv2.structures import check_task

from .errors import check_path_exists


def build_transform(cfg: dict):
    """Build a pipeline step with mmupv2's ``TRANSFORMS`` registry.

    ``PackUPv2Inputs`` and mmcv's transforms are found by their bare names;
    another package's transform is named with its prefix
    (``'mmpretrain.RandAugment'``, ``'mmdet.LoadAnnotations'``) and built
    *in that package's scope*, so that the transforms it builds itself by
    bare name (RandAugment's policies) are found too.
    """
    cfg = dict(cfg)
    obj_type = cfg.get('type')
    if isinstance(obj_type, str) and '.' in obj_type \
            and '_scope_' not in cfg:
        scope, name = obj_type.split('.', 1)
        cfg.update(type=name, _scope_=scope)
    return TRANSFORMS.build(cfg)


class TaskDatasetMixin:
    """Adds ``task`` and ``dataset_name`` to every sample of a data set.

    Put it before the mmengine / mmdet / mmpretrain data set class::

        class UPv2CocoDataset(TaskDatasetMixin, CocoDataset): ...

    The tags are added in :meth:`get_data_info`, not stored per record, so
    they cost no memory on large data sets. Before loading anything the mixin
    checks that the local ``data_root`` and ``ann_file`` exist and, if not,
    raises an error that names the config key and the path.

    The ``pipeline`` is built by :func:`build_transform`, whatever the
    current default scope (mmpretrain's data sets would otherwise build it in
    the ``mmpretrain`` scope).

    Args:
        task: one of :data:`mmupv2.structures.TASKS`; defaults to the class
            attribute ``default_task``.
        dataset_name: name used in metric keys and per-data-set sampling
            ratios; defaults to the class name.
    """
    default_task: str = ''

    def __init__(self,
                 *args,
                 task: Optional[str] = None,
                 dataset_name: Optional[str] = None,
                 **kwargs) -> None:
        self.task = check_task(task or self.default_task)
        self.dataset_name = dataset_name or type(self).__name__
        owner = f'{type(self).__name__}({self.dataset_name})'
        data_root = kwargs.get('data_root') or ''
        check_path_exists(data_root, 'data_root', owner)
        ann_file = kwargs.get('ann_file') or ''
        if ann_file and not osp.isabs(ann_file) and '://' not in ann_file:
            ann_file = osp.join(data_root, ann_file)
        check_path_exists(ann_file, 'ann_file', owner)
        kwargs['pipeline'] = [
            build_transform(t) if isinstance(t, dict) else t
            for t in kwargs.get('pipeline', ())
        ]
        super().__init__(*args, **kwargs)

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['task'] = self.task
        info['dataset_name'] = self.dataset_name
        return info
