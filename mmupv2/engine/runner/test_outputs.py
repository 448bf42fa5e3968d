# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What ``tools/test.py --out`` / ``--show-dir`` add to a built test loop:
per data set, a metric that writes its raw predictions, and the hook that
draws them (mmdet appends ``DumpDetResults`` to the evaluator and switches
on ``DetVisualizationHook``; this is the same for a test of many data
sets).

``--out OUT`` names one file per data set ``NAME`` (``OUT`` minus a
``.pkl`` / ``.pickle`` / ``.json`` extension, or ``OUT/`` for a folder):

============================= ==========================================
task of NAME                  files (in the format its metric reads)
============================= ==========================================
detection                     ``OUT.NAME.bbox.json`` (COCO results)
instance segmentation         ``OUT.NAME.bbox.json``, ``OUT.NAME.segm.json``
                              (COCO results, masks as RLE)
classification                ``OUT.NAME.pkl`` (scores, labels)
captioning                    ``OUT.NAME.json`` (``image_id`` / ``caption``)
retrieval                     ``OUT.NAME.pkl`` (similarity matrix)
============================= ==========================================

See :mod:`mmupv2.evaluation.metrics.dump_results` for the content.
"""
import logging
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmupv2.evaluation.metrics.dump_results import (
    DUMP_FORMATS,
    DumpTaskResults,
)

#: Tasks whose dump is mmdet's COCO results JSON.
COCO_TASKS = ('detection', 'instance_segmentation')
#: Extensions dropped from ``--out`` (mmdet's ``--out results.pkl``).
OUT_EXTENSIONS = ('.pkl', '.pickle', '.json')


def loop_data_sets(loop) -> Iterator[Tuple[str, Optional[str], Evaluator,
                                           object]]:
    """``(name, task, evaluator, dataset)`` of every data set of a test
    loop: the entries of ``MultiTaskTestLoop``, or the one data set of
    mmengine's ``TestLoop`` (named by its ``dataset_name``, else
    ``'test'``)."""
    evaluators = getattr(loop, 'evaluators', None)
    if isinstance(evaluators, dict):
        for name, evaluator in evaluators.items():
            yield (name, loop.tasks.get(name), evaluator,
                   loop.dataloaders[name].dataset)
        return
    dataset = loop.dataloader.dataset
    yield (getattr(dataset, 'dataset_name', None) or 'test',
           getattr(dataset, 'task', None), loop.evaluator, dataset)


def out_prefix(out: str, name: str) -> str:
    """The path of data set ``name``'s dump without its extension:
    ``OUT.NAME`` (an ``OUT`` extension of :data:`OUT_EXTENSIONS` dropped),
    or ``OUT/NAME`` when ``OUT`` ends with a separator or is a folder."""
    if out.endswith(('/', osp.sep)) or osp.isdir(out):
        return osp.join(out, name)
    stem, ext = osp.splitext(out)
    if ext.lower() in OUT_EXTENSIONS:
        out = stem
    return f'{out}.{name}'


def dump_files(out: str, name: str, task: Optional[str]) -> List[str]:
    """The files ``--out OUT`` writes for data set ``name`` of ``task``
    (empty for a task without a dump)."""
    prefix = out_prefix(out, name)
    if task == 'detection':
        return [f'{prefix}.bbox.json']
    if task == 'instance_segmentation':
        return [f'{prefix}.bbox.json', f'{prefix}.segm.json']
    if task in DUMP_FORMATS:
        return [prefix + DUMP_FORMATS[task]]
    return []


def _coco_ann_file(dataset) -> Optional[str]:
    """The COCO JSON a detection data set reads (its image and category
    ids are those of the results), if it has one."""
    ann_file = getattr(dataset, 'ann_file', None)
    if isinstance(ann_file, str) and ann_file.endswith('.json'):
        return ann_file
    return None


def add_dump_metrics(loop, out: str) -> Dict[str, List[str]]:
    """Append to the evaluator of every data set of a built test loop the
    metric that writes its raw predictions (see the module docstring).

    Detection / instance segmentation get mmdet's
    ``CocoMetric(format_only=True, outfile_prefix=OUT.NAME)`` with the data
    set's annotation file (its category ids); the other tasks
    :class:`~mmupv2.evaluation.metrics.DumpTaskResults`. A data set of
    another task (MLM) is skipped with a warning.

    Args:
        loop: ``runner.test_loop`` (``MultiTaskTestLoop`` or ``TestLoop``).
        out: the ``--out`` argument.

    Returns:
        dict: ``{data set name: [files it will write]}``.
    """
    from mmdet.evaluation import CocoMetric
    files = {}
    for name, task, evaluator, dataset in loop_data_sets(loop):
        paths = dump_files(out, name, task)
        if not paths:
            print_log(
                f'--out: data set {name!r} (task {task}) has no dump '
                f'format; known tasks: {", ".join(COCO_TASKS)}, '
                f'{", ".join(DUMP_FORMATS)}',
                logger='current',
                level=logging.WARNING)
            continue
        if task in COCO_TASKS:
            metric = CocoMetric(
                ann_file=_coco_ann_file(dataset),
                metric=['bbox', 'segm'] if task == COCO_TASKS[1] else 'bbox',
                format_only=True,
                outfile_prefix=out_prefix(out, name))
        else:
            metric = DumpTaskResults(task=task, out_file=paths[0])
        mkdir_or_exist(osp.dirname(osp.abspath(paths[0])))
        metric.dataset_meta = evaluator.dataset_meta
        evaluator.metrics.append(metric)
        files[name] = paths
    return files
