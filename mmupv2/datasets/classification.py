# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image classification from an ImageNet-style list or class folders."""
from typing import List

from mmengine.fileio import get_file_backend, list_from_file
from mmpretrain.datasets import CustomDataset
from mmpretrain.datasets.categories import IMAGENET_SIMPLE_CATEGORIES

from mmupv2.registry import DATASETS

from .errors import AnnotationError
from .task_dataset import TaskDatasetMixin


@DATASETS.register_module()
class UPv2ClassificationDataset(TaskDatasetMixin, CustomDataset):
    """mmpretrain's :class:`~mmpretrain.datasets.CustomDataset` tagged with
    ``task='classification'`` and strict about its list file.

    With ``ann_file``, each line is ``<path relative to data_prefix> <label>``
    (ImageNet's ``meta/train.txt`` format; the path may contain spaces, the
    label is the last field); without it, one sub-folder per class as in
    mmpretrain. Class names come from ``classes`` (a list or a file with one
    name per line) or ``metainfo``.

    Errors (:class:`~mmupv2.datasets.errors.AnnotationError`, naming the file
    and line): a line without a label, a label that is not an integer, a
    label outside ``[0, num_classes)``.
    """
    default_task = 'classification'

    def load_data_list(self) -> List[dict]:
        if not self.ann_file or not self.with_label:
            return super().load_data_list()
        backend = get_file_backend(self.img_prefix, enable_singleton=True)
        num_classes = len(self.CLASSES) if self.CLASSES else None
        data_list = []
        for lineno, line in enumerate(list_from_file(self.ann_file), 1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(' ', 1)
            if len(parts) != 2:
                raise AnnotationError(self.ann_file,
                                      f"expected '<path> <label>', got "
                                      f'{line!r}', f'line {lineno}')
            filename, label = parts
            try:
                label = int(label)
            except ValueError:
                raise AnnotationError(self.ann_file,
                                      f'label {label!r} is not an integer',
                                      f'line {lineno}') from None
            if label < 0 or (num_classes is not None
                             and label >= num_classes):
                raise AnnotationError(
                    self.ann_file, f'label {label} is outside [0, '
                    f'{num_classes}) of the {num_classes} classes',
                    f'line {lineno}')
            data_list.append(
                dict(img_path=backend.join_path(self.img_prefix, filename),
                     gt_label=label))
        return data_list


@DATASETS.register_module()
class UPv2ImageNetDataset(UPv2ClassificationDataset):
    """ImageNet-1k: :class:`UPv2ClassificationDataset` with the 1000 short
    class names of CLIP's zero-shot prompts (mmpretrain's
    ``IMAGENET_SIMPLE_CATEGORIES``: ``'tench'``, ``'goldfish'``, ...), in
    the label order of the standard ``train.txt`` / ``val.txt``.

    These are the classification head's text targets in the paper configs
    (``configs/_base_/models/uniperceiver_v2_classes.py``), as Uni-Perceiver
    v1 uses CLIP's names; a checkpoint's ``dataset_meta`` therefore carries
    the same names the head was trained with. (mmpretrain's ``ImageNet``
    has WordNet synonym lists, ``'tench, Tinca tinca'``, worse as text.)
    """
    METAINFO = {'classes': IMAGENET_SIMPLE_CATEGORIES}
