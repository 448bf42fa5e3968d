# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Per-task inference pipelines, taken from a config's test / val data sets.

A Uni-Perceiver v2 config evaluates every task on its own data set, each
with its own test pipeline (in ``configs/_base_/datasets/``:
``cls_caption_retrieval.py``, ``coco_instance.py``, ``shapes.py``).
Inference on a user's images uses the same transforms, with two changes:

- ``LoadImageFromFile`` becomes mmdet's ``InferencerLoader``, which loads a
  path (``results['img_path']``) or takes an HxWx3 BGR ``uint8`` array
  (``results['img']``, via ``LoadImageFromNDArray``);
- the annotation transforms (``LoadAnnotations``, ``FilterAnnotations``)
  are dropped: there is nothing to load;
- optionally, ``LimitImageSize`` is put before the pack transform, so that
  an image larger than the pipeline expects (a 4000x4000 photo through a
  pipeline without resize) is shrunk to a bounded size.
"""
import copy
import warnings
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.config import ConfigDict
from mmengine.dataset import Compose

from mmupv2.datasets.task_dataset import build_transform
from mmupv2.registry import DATASETS
from mmupv2.structures import TASKS

#: Where :func:`find_task_pipelines` looks, in this order.
LOADER_KEYS = ('test_dataloader', 'val_dataloader')
#: The task whose pipeline stands in for a task the config has none for
#: (same kind of input and resolution).
SIBLING_TASK = {
    'detection': 'instance_segmentation',
    'instance_segmentation': 'detection',
    'captioning': 'retrieval',
    'retrieval': 'captioning',
    'classification': 'captioning',
}
#: Transforms that read annotations; dropped for inference.
ANNOTATION_TRANSFORMS = frozenset({'LoadAnnotations', 'FilterAnnotations'})
LOAD_TRANSFORMS = frozenset({'LoadImageFromFile', 'InferencerLoader'})
PACK_TRANSFORM = 'PackUPv2Inputs'
#: Shrinks an image whose longer side exceeds a limit (never upsamples).
LIMIT_TRANSFORM = 'LimitImageSize'
#: The fallback when the config holds no pipeline for a task: load and pack,
#: no resize (the image goes in at its own size, up to the inferencer's
#: ``max_image_size``).
MINIMAL_PIPELINE = (dict(type='LoadImageFromFile'),
                    dict(type=PACK_TRANSFORM))


def _bare_type(transform: dict) -> str:
    """``'mmdet.Resize'`` -> ``'Resize'``."""
    obj_type = transform.get('type', '')
    if not isinstance(obj_type, str):
        return getattr(obj_type, '__name__', str(obj_type))
    return obj_type.rsplit('.', 1)[-1]


def _iter_loaders(loaders: dict) -> Iterator[Tuple[Optional[str], dict]]:
    """``(entry name, loader cfg)`` of a single loader (name None) or of a
    ``{entry name: loader}`` dict (``MultiTaskValLoop``; a train-style entry
    ``dict(dataloader=...)`` is unwrapped too)."""
    if 'dataset' in loaders:
        yield None, loaders
        return
    for name, loader in loaders.items():
        if isinstance(loader, dict) and 'dataloader' in loader:
            loader = loader['dataloader']
        if isinstance(loader, dict) and 'dataset' in loader:
            yield name, loader


def _inner_dataset(dataset: dict) -> dict:
    """The data set that holds the pipeline (wrappers such as
    ``RepeatDataset`` / ``ConcatDataset`` are opened)."""
    while 'pipeline' not in dataset:
        if isinstance(dataset.get('dataset'), dict):
            dataset = dataset['dataset']
        elif dataset.get('datasets'):
            dataset = dataset['datasets'][0]
        else:
            break
    return dataset


def dataset_task(dataset: dict, entry_name: Optional[str]) -> Optional[str]:
    """The task of a data set config: its ``task`` key, else its class's
    ``default_task`` (mmupv2 data sets), else the entry name when it is a
    task name."""
    if dataset.get('task'):
        return dataset['task']
    obj_type = dataset.get('type')
    cls = DATASETS.get(obj_type) if isinstance(obj_type, str) else obj_type
    task = getattr(cls, 'default_task', '') if cls is not None else ''
    if task:
        return task
    return entry_name if entry_name in TASKS else None


def find_task_pipelines(cfg: ConfigDict) -> Dict[str, List[dict]]:
    """The data set pipeline of every task found in ``cfg``.

    Args:
        cfg: a full config; ``test_dataloader`` is searched first, then
            ``val_dataloader``. Either may be one loader or ``{entry name:
            loader}``; the first data set of a task wins.

    Returns:
        dict[str, list[dict]]: ``{task: pipeline cfg}`` (deep copies).
    """
    found: Dict[str, List[dict]] = {}
    for key in LOADER_KEYS:
        loaders = cfg.get(key)
        if not isinstance(loaders, dict):
            continue
        for name, loader in _iter_loaders(loaders):
            dataset = _inner_dataset(loader['dataset'])
            task = dataset_task(dataset, name)
            if task in TASKS and task not in found and dataset.get(
                    'pipeline'):
                found[task] = copy.deepcopy(list(dataset['pipeline']))
    return found


def inference_pipeline_cfg(pipeline: List[dict],
                           task: str,
                           max_image_size: Optional[int] = None
                           ) -> List[dict]:
    """Turn a data set's test pipeline into an inference pipeline.

    Args:
        pipeline: the data set's transforms (dicts).
        task: the task, for error messages.
        max_image_size: if given, a ``LimitImageSize`` of this size goes
            right before the pack transform (after any resize of the
            pipeline, whose ``scale_factor`` it composes with).

    Returns:
        list[dict]: the transforms with the image loader replaced by
        ``mmdet.InferencerLoader`` (same arguments), the annotation
        transforms removed and the size limit added.

    Raises:
        ValueError: the pipeline has no ``LoadImageFromFile``.
    """
    out, has_loader = [], False
    for transform in pipeline:
        transform = dict(transform)
        name = _bare_type(transform)
        if name in ANNOTATION_TRANSFORMS:
            continue
        if name in LOAD_TRANSFORMS:
            transform['type'] = 'mmdet.InferencerLoader'
            has_loader = True
        out.append(transform)
    if not has_loader:
        types = [_bare_type(t) for t in pipeline]
        raise ValueError(f'the {task} pipeline {types} has no '
                         'LoadImageFromFile; an image pipeline must load '
                         'the image first')
    if max_image_size is not None:
        packs = [i for i, t in enumerate(out)
                 if _bare_type(t) == PACK_TRANSFORM]
        at = packs[-1] if packs else len(out)
        out.insert(at, dict(type=LIMIT_TRANSFORM, max_size=max_image_size))
    return out


def text_pipeline_cfg(pipeline: List[dict]) -> List[dict]:
    """The text side of a pipeline: only its pack transform (a text sample
    has no image to transform)."""
    packs = [dict(t) for t in pipeline if _bare_type(t) == PACK_TRANSFORM]
    return packs[-1:] or [dict(type=PACK_TRANSFORM)]


def build_pipeline(pipeline: List[dict]) -> Compose:
    """Build transforms as the data sets do
    (:func:`~mmupv2.datasets.task_dataset.build_transform`: a prefixed type
    is built in that package's scope)."""
    return Compose([
        build_transform(t) if isinstance(t, dict) else t for t in pipeline
    ])


def resolve_task_pipelines(
        cfg: ConfigDict,
        tasks: List[str],
        overrides: Optional[Dict[str, List[dict]]] = None
) -> Dict[str, List[dict]]:
    """The data set pipeline to use for each of ``tasks``.

    Order: ``overrides[task]``; the config's test / val data set of the
    task; the one of its sibling task (:data:`SIBLING_TASK`, e.g. detection
    for instance segmentation); else :data:`MINIMAL_PIPELINE`, with a
    warning (the image is not resized).

    Args:
        cfg: the full config.
        tasks: the model's tasks (MLM is skipped: it takes no image).
        overrides: ``{task: pipeline}`` given by the user.

    Returns:
        dict[str, list[dict]]: ``{task: pipeline cfg}`` before
        :func:`inference_pipeline_cfg`.

    Raises:
        KeyError: an override names an unknown task.
    """
    overrides = dict(overrides or {})
    for task in overrides:
        if task not in TASKS:
            raise KeyError(f'pipelines: unknown task {task!r}; expected one '
                           f'of {", ".join(TASKS)}')
    found = find_task_pipelines(cfg)
    found.update(overrides)
    resolved = {}
    for task in tasks:
        if task == 'mlm':
            continue
        if task in found:
            resolved[task] = found[task]
        elif SIBLING_TASK.get(task) in found:
            resolved[task] = found[SIBLING_TASK[task]]
        else:
            warnings.warn(
                f'no {task} pipeline in the config ({" / ".join(LOADER_KEYS)}'
                f'); images of {task} are loaded and packed without '
                'resizing. Pass pipelines={...} to UniPerceiverInferencer '
                'to choose one.',
                stacklevel=2)
            resolved[task] = [dict(t) for t in MINIMAL_PIPELINE]
    return resolved
