# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The class names a checkpoint was trained with, per task."""
import warnings
from typing import List, Mapping, Optional

#: Tasks whose targets are class names (the rest decode texts or tokens).
CLASS_NAME_TASKS = ('classification', 'detection', 'instance_segmentation')


def _lower_keys(meta: Mapping) -> dict:
    """mmdet's rule: dataset_meta keys are lower case (``CLASSES`` of
    older checkpoints becomes ``classes``)."""
    return {k.lower() if isinstance(k, str) else k: v for k, v in meta.items()}


def classes_from_dataset_meta(dataset_meta: Optional[Mapping],
                              task: str) -> Optional[List]:
    """The class names of ``task`` in a checkpoint's ``meta.dataset_meta``.

    Two layouts are read:

    - mmupv2's ``MultiTaskLoop`` saves ``{entry name: metainfo}`` where each
      metainfo holds the entry's ``task`` (and ``classes`` for the
      class-name tasks): the classes of the first entry of ``task`` are
      returned (with a warning naming the entries if several entries of the
      task disagree, e.g. COCO and Objects365 detection);
    - a single data set's metainfo ``{'classes': [...], ...}`` (mmengine's
      plain loops): its classes are the label space the model was trained
      with, returned for every task unless the metainfo names another
      ``task``.

    Args:
        dataset_meta: ``checkpoint['meta']['dataset_meta']`` (may be None).
        task: one of :data:`CLASS_NAME_TASKS`.

    Returns:
        list | None: class names (an entry may be a list of synonyms), or
        None when the meta has none for ``task``.
    """
    if not isinstance(dataset_meta, Mapping) or not dataset_meta:
        return None
    flat = _lower_keys(dataset_meta)
    if 'classes' in flat:
        if flat.get('task', task) != task or not flat['classes']:
            return None
        return list(flat['classes'])
    found = []
    for name, meta in dataset_meta.items():
        if not isinstance(meta, Mapping):
            continue
        meta = _lower_keys(meta)
        if meta.get('task') == task and meta.get('classes'):
            found.append((name, list(meta['classes'])))
    if not found:
        return None
    if any(classes != found[0][1] for _, classes in found[1:]):
        warnings.warn(
            f'the checkpoint has several {task} label spaces (entries '
            f'{", ".join(repr(n) for n, _ in found)}); the default classes '
            f'are those of {found[0][0]!r}. Pass classes=... to choose.',
            stacklevel=2)
    return found[0][1]
