# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""COCO instances (detection / instance segmentation) with strict checks."""
import json
import math
from typing import List, Union

from mmdet.datasets import CocoDataset

from mmupv2.registry import DATASETS

from .errors import AnnotationError
from .task_dataset import TaskDatasetMixin


@DATASETS.register_module()
class UPv2CocoDataset(TaskDatasetMixin, CocoDataset):
    """mmdet's :class:`~mmdet.datasets.CocoDataset`, tagged with its task and
    strict about bad input.

    Reads any COCO-instances JSON (COCO 2017, the shapes benchmark, LVIS-style
    files with their own ``categories``). Classes come from
    ``metainfo=dict(classes=...)`` as in mmdet (default: COCO's 80); every
    name must be a category of the file. An image without annotations is a
    valid sample (``filter_cfg=dict(filter_empty_gt=True)`` drops it in
    training, as in mmdet).

    Errors (:class:`~mmupv2.datasets.errors.AnnotationError`, naming the file
    and the record) for: malformed JSON; an image record without
    ``file_name`` / ``height`` / ``width``; an annotation whose
    ``category_id`` is not among the file's categories; a degenerate box (not
    four finite numbers, width or height <= 0, or no overlap with the image).
    Boxes thinner than one pixel stay valid and are skipped, as mmdet does:
    real COCO has some. ``bad_annotation='warn'`` skips bad annotations with
    a warning instead of raising.

    Args:
        task: ``'detection'`` (default) or ``'instance_segmentation'``.
        dataset_name: name in metric keys; default ``'UPv2CocoDataset'``.
        bad_annotation: ``'error'`` (default) or ``'warn'``.
        **kwargs: arguments of mmdet's ``CocoDataset``.
    """
    default_task = 'detection'

    def __init__(self, *args, bad_annotation: str = 'error', **kwargs):
        if bad_annotation not in ('error', 'warn'):
            raise ValueError("bad_annotation must be 'error' or 'warn', got "
                             f'{bad_annotation!r}')
        self.bad_annotation = bad_annotation
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        self._classes_checked = False  # checked once the file is loaded
        try:
            return super().load_data_list()
        except json.JSONDecodeError as e:
            raise AnnotationError(
                self.ann_file, f'malformed JSON ({e.msg} at line {e.lineno}, '
                f'column {e.colno})') from e

    def _check_classes(self) -> None:
        names = {cat['name'] for cat in self.coco.cats.values()}
        missing = [c for c in self.metainfo['classes'] if c not in names]
        if missing:
            raise AnnotationError(
                self.ann_file, f'classes {missing} of the config are not '
                f'categories of the file (it has {sorted(names)})')

    def _bad(self, message: str, record: str) -> None:
        if self.bad_annotation == 'error':
            raise AnnotationError(self.ann_file, message, record)
        from mmengine.logging import print_log
        print_log(f'{self.ann_file}, {record}: {message}; skipped',
                  logger='current', level=30)

    def _valid_annotation(self, ann: dict, img_info: dict) -> bool:
        record = f"annotation id {ann.get('id')} (image id " \
                 f"{img_info['img_id']})"
        if ann.get('category_id') not in self.coco.cats:
            self._bad(
                f"category_id {ann.get('category_id')!r} is not among the "
                f'categories of the file {sorted(self.coco.cats)}', record)
            return False
        box = ann.get('bbox')
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(
                isinstance(v, (int, float)) and math.isfinite(v)
                for v in box)):
            self._bad(f'degenerate box {box!r}: expected [x, y, w, h] of 4 '
                      'finite numbers', record)
            return False
        x, y, w, h = box
        if w <= 0 or h <= 0:
            self._bad(f'degenerate box {box!r}: width and height must be > 0',
                      record)
            return False
        if x >= img_info['width'] or y >= img_info['height'] or x + w <= 0 \
                or y + h <= 0:
            self._bad(
                f'degenerate box {box!r}: outside the image of size '
                f"{img_info['width']}x{img_info['height']}", record)
            return False
        return True

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info = raw_data_info['raw_img_info']
        if not self._classes_checked:
            self._check_classes()
            self._classes_checked = True
        missing = [
            k for k in ('file_name', 'height', 'width') if k not in img_info
        ]
        if missing:
            raise AnnotationError(self.ann_file,
                                  f'image record lacks {missing}',
                                  f"image id {img_info['img_id']}")
        raw_data_info = dict(
            raw_data_info,
            raw_ann_info=[
                ann for ann in raw_data_info['raw_ann_info']
                if self._valid_annotation(ann, img_info)
            ])
        return super().parse_data_info(raw_data_info)
