# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Write the raw predictions of one test data set to a file, in the form
that the task's metric reads (``tools/test.py --out``; mmdet's
``DumpDetResults`` for the tasks that are not COCO detection).

Detection and instance segmentation need no class here: mmdet's
``CocoMetric(format_only=True, outfile_prefix=...)`` writes the COCO results
JSON (see :func:`mmupv2.engine.runner.test_outputs.add_dump_metrics`).

============== =========== ==============================================
task           file        content
============== =========== ==============================================
classification ``.pkl``    ``dict(pred_score=(N, C) float32,
                           pred_label=(N,) int64, gt_label=(N,) int64
                           (-1: none), img_path=[N], classes=[C])``: what
                           ``mmpretrain.Accuracy.calculate(pred_score,
                           gt_label, topk)`` reads
captioning     ``.json``   ``[{"image_id": int, "caption": str}, ...]``:
                           the COCO caption results format
                           (``COCO.loadRes``; :func:`caption_scores` with
                           ``{image_id: caption}``)
retrieval      ``.pkl``    ``dict(similarity=(I, T) float32 cosine of every
                           image to every text, text_to_image=(T,) int64,
                           image_ids=(I,) int64, img_path=[I],
                           texts=[T])``, images sorted by ``image_id`` as
                           the metric sorts them: what
                           :meth:`ImageTextRetrievalMetric.
                           recalls_from_similarity` reads
============== =========== ==============================================

``.pkl`` files are written with ``mmengine.dump`` (numpy arrays, plain
Python lists); read them with ``mmengine.load``.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmupv2.registry import METRICS

from .retrieval_metric import retrieval_gallery

#: The file extension of each task's dump.
DUMP_FORMATS = {
    'classification': '.pkl',
    'captioning': '.json',
    'retrieval': '.pkl',
}


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def _texts(sample: dict) -> List[str]:
    """A retrieval test image's texts: ``gt_caption`` (a list), or
    ``text`` (one string)."""
    if isinstance(sample.get('gt_caption'), (list, tuple)):
        return list(sample['gt_caption'])
    if isinstance(sample.get('text'), str):
        return [sample['text']]
    return []


@METRICS.register_module()
class DumpTaskResults(BaseMetric):
    """Dump one data set's predictions of ``task`` to ``out_file`` (see the
    module docstring for the formats); computes no metric.

    As every metric, it sees the whole data set on rank 0 after the ranks'
    results are collected (padding samples dropped), so the file is the
    same for any number of processes.

    Args:
        task: ``'classification'``, ``'captioning'`` or ``'retrieval'``.
        out_file: the file to write (its folder is created).
        collect_device / prefix: as in mmengine's ``BaseMetric``.

    Raises:
        ValueError: a task without a dump format here (detection and
            instance segmentation: use ``mmdet.CocoMetric(format_only=True)``).
        KeyError (in ``process``): a sample lacks a prediction of ``task``.
    """

    def __init__(self,
                 task: str,
                 out_file: str,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if task not in DUMP_FORMATS:
            raise ValueError(
                f'DumpTaskResults: no dump format for task {task!r}; '
                f'expected one of {", ".join(DUMP_FORMATS)} (detection / '
                'instance segmentation: mmdet.CocoMetric(format_only=True))')
        self.task = task
        self.out_file = out_file

    def _require(self, sample: dict, key: str) -> None:
        if key not in sample:
            raise KeyError(
                f'DumpTaskResults({self.task}): a data sample '
                f'({sample.get("img_path", "no img_path")}) has no {key!r}; '
                f'keys: {sorted(sample)}')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if self.task == 'classification':
                self._require(sample, 'pred_score')
                gt = sample.get('gt_label')
                self.results.append(
                    dict(score=_numpy(sample['pred_score']),
                         gt=-1 if gt is None or len(gt) == 0 else int(gt[0]),
                         img_path=sample.get('img_path')))
            elif self.task == 'captioning':
                self._require(sample, 'pred_caption')
                self.results.append(
                    dict(image_id=sample.get('image_id',
                                             sample.get('img_id')),
                         caption=sample['pred_caption']))
            else:
                self._require(sample, 'image_feat')
                self._require(sample, 'text_feat')
                self.results.append(
                    dict(image_id=sample.get('image_id', len(self.results)),
                         image=sample['image_feat'].detach().cpu().float(),
                         texts=sample['text_feat'].detach().cpu().float(),
                         text=_texts(sample),
                         img_path=sample.get('img_path')))

    def _classification(self, results: List[dict]) -> dict:
        scores = np.stack([r['score'] for r in results])
        return dict(
            pred_score=scores.astype(np.float32),
            pred_label=scores.argmax(1).astype(np.int64),
            gt_label=np.array([r['gt'] for r in results], dtype=np.int64),
            img_path=[r['img_path'] for r in results],
            classes=list((self.dataset_meta or {}).get('classes') or []))

    @staticmethod
    def _retrieval(results: List[dict]) -> dict:
        results, images, texts, text_to_image = retrieval_gallery(results)
        text = [t for r in results for t in r['text']]
        similarity = F.normalize(images, dim=-1) @ F.normalize(
            texts, dim=-1).t()
        return dict(
            similarity=similarity.numpy(),
            text_to_image=text_to_image.numpy(),
            image_ids=np.array([r['image_id'] for r in results],
                               dtype=np.int64),
            img_path=[r['img_path'] for r in results],
            texts=text if len(text) == len(texts) else [])

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if self.task == 'classification':
            content = self._classification(results)
        elif self.task == 'captioning':
            content = [dict(image_id=r['image_id'], caption=r['caption'])
                       for r in results]
        else:
            content = self._retrieval(results)
        folder = osp.dirname(osp.abspath(self.out_file))
        mkdir_or_exist(folder)
        dump(content, self.out_file)
        print_log(f'{self.task} predictions of {len(results)} samples '
                  f'written to {self.out_file}', logger='current')
        return {}
