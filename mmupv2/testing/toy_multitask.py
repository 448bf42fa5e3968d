# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A tiny multi-task model and data set for engine tests and CPU smoke runs.

They follow the contracts of the real ones (task in every sample's
metainfo, task-prefixed loss keys, ``predict`` filling ``pred_score`` /
``pred_label``) at a size that trains in seconds on a CPU.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel

from mmupv2.datasets.task_dataset import TaskDatasetMixin
from mmupv2.registry import DATASETS, MODELS
from mmupv2.structures import UPv2DataSample


@DATASETS.register_module()
class ToyTaskDataset(TaskDatasetMixin, BaseDataset):
    """Random feature vectors with a label that a linear model can learn.

    Sample ``i`` has ``inputs`` (feat_dim,) and ``gt_label`` = argmax of a
    fixed random projection of its features, per data set ``seed``.

    Args:
        num_samples: data set length.
        feat_dim: feature size.
        num_classes: label range.
        seed: fixes features and labels.
        task / dataset_name: see :class:`TaskDatasetMixin`.
    """
    default_task = 'classification'

    def __init__(self, num_samples: int = 64, feat_dim: int = 8,
                 num_classes: int = 3, seed: int = 0, **kwargs) -> None:
        self.num_samples, self.feat_dim = num_samples, feat_dim
        self.num_classes, self.seed = num_classes, seed
        kwargs.setdefault(
            'metainfo',
            dict(classes=tuple(f'class_{i}' for i in range(num_classes))))
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        gen = torch.Generator().manual_seed(self.seed)
        feats = torch.randn(self.num_samples, self.feat_dim, generator=gen)
        proj = torch.randn(self.feat_dim, self.num_classes, generator=gen)
        labels = (feats @ proj).argmax(1)
        return [
            dict(features=f.tolist(), gt_label=int(label), sample_idx=i)
            for i, (f, label) in enumerate(zip(feats, labels))
        ]

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        sample = UPv2DataSample(
            metainfo=dict(dataset_name=info['dataset_name'],
                          sample_idx=info['sample_idx']))
        sample.set_task(info['task']).set_gt_label(info['gt_label'])
        return dict(inputs=torch.tensor(info['features']),
                    data_samples=sample)


@MODELS.register_module()
class ToyMultiTaskModel(BaseModel):
    """A shared trunk and one linear head per task.

    ``forward(inputs, data_samples, mode)`` dispatches on the task in the
    samples' metainfo (all samples of a batch share it), as
    ``UniPerceiverV2`` does. Loss keys are ``'<task>.loss_cls'``.

    Args:
        tasks: ``{task: num_classes}``.
        feat_dim / hidden: trunk sizes.
    """

    def __init__(self, tasks: Dict[str, int], feat_dim: int = 8,
                 hidden: int = 16, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.trunk = nn.Sequential(nn.Linear(feat_dim, hidden), nn.ReLU())
        self.heads = nn.ModuleDict(
            {task: nn.Linear(hidden, n) for task, n in tasks.items()})

    @staticmethod
    def batch_task(data_samples: Sequence[UPv2DataSample]) -> str:
        tasks = {s.task for s in data_samples}
        if len(tasks) != 1:
            raise ValueError(f'a batch must hold one task, got {tasks}')
        return tasks.pop()

    def forward(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[List[UPv2DataSample]] = None,
                mode: str = 'tensor'):
        """Args: inputs (B, feat_dim) or a list of (feat_dim,)."""
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(inputs)
        task = self.batch_task(data_samples)
        logits = self.heads[task](self.trunk(inputs.float()))  # (B, C)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            labels = torch.cat([s.gt_label for s in data_samples])
            return {
                f'{task}.loss_cls':
                nn.functional.cross_entropy(logits, labels.to(logits.device))
            }
        if mode == 'predict':
            for sample, score in zip(data_samples, logits.softmax(1)):
                sample.set_pred_score(score).set_pred_label(score.argmax())
            return data_samples
        raise ValueError(f'unknown mode {mode!r}')
