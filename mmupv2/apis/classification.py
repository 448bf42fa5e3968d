# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image classification over any label names (the ``classify`` part of
:class:`~mmupv2.apis.UniPerceiverInferencer`)::

    images, labels --label space--> classes=[[synonyms], ...] (C)
        --model.predict(..., classes=...)--> pred_score (C,), pred_label
        --here--> pred_class, pred_topk_{labels,scores,classes} (k)
"""
from typing import List, Optional, Tuple

import torch

from mmupv2.models.tasks.class_names import ClassNames
from mmupv2.structures import UPv2DataSample

from .base import InputsType, SampleList, TaskCall, TaskInferencer


class ClassificationInferencer(TaskInferencer):
    """Classification: the model's class probabilities over the call's
    label space, and the names of the best ``topk`` labels."""
    tasks = ('classification', )

    def __call__(self, imgs: InputsType, labels: Optional[ClassNames],
                 topk: int, batch_size: int,
                 vis_kwargs: dict) -> Tuple[SampleList, Optional[list]]:
        """See :meth:`UniPerceiverInferencer.classify`; returns the samples
        and the drawings (or None)."""
        if not isinstance(topk, int) or topk < 1:
            raise ValueError(f'topk must be an int >= 1, got {topk!r}')
        engine = self.engine
        task = engine._check_task('classification')
        images = engine._inputs_to_list(imgs)
        preds, names = engine.predict_in_label_space(
            task, images, batch_size, labels, 'labels')
        for sample in preds:
            scores, idx = sample.pred_score.topk(min(topk, len(names)))
            sample.pred_topk_labels = idx
            sample.pred_topk_scores = scores
            sample.pred_topk_classes = [names[i] for i in idx.tolist()]
            sample.pred_class = names[int(sample.pred_label[0])]
        return preds, engine.visualize(images, preds, task=task,
                                       **vis_kwargs)

    def from_call(self, task: str,
                  call: TaskCall) -> Tuple[SampleList, Optional[list]]:
        return self(call.inputs, call.classes, call.topk, call.batch_size,
                    call.vis_kwargs)

    def text_lines(self, sample: UPv2DataSample,
                   texts: Optional[List[str]]) -> List[str]:
        """``'name: score'`` of the top-k labels."""
        return [
            f'{name}: {float(score):.2f}' for name, score in zip(
                sample.pred_topk_classes, sample.pred_topk_scores)
        ]

    @staticmethod
    def to_dict(sample: UPv2DataSample) -> dict:
        """``pred_label``, ``pred_class``, ``pred_scores``,
        ``topk_labels``, ``topk_classes``, ``topk_scores``."""
        return dict(
            pred_label=int(sample.pred_label[0]),
            pred_class=sample.get('pred_class'),
            pred_scores=sample.pred_score.tolist(),
            topk_labels=sample.get('pred_topk_labels',
                                   torch.empty(0)).tolist(),
            topk_classes=list(sample.get('pred_topk_classes', [])),
            topk_scores=sample.get('pred_topk_scores',
                                   torch.empty(0)).tolist())
