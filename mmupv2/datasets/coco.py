# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""COCO instances (detection / instance segmentation) with strict checks."""
import json
import math
import warnings
from collections import Counter
from typing import Any, Dict, List, Union

import mmcv
from mmdet.datasets import CocoDataset
from mmengine.fileio import get

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
    real COCO has some. ``bad_annotation='warn'`` skips bad annotations
    instead of raising. An image whose file is not of the size of its record
    (``width`` x ``height``) raises when it is loaded.

    Nothing is dropped without a word: annotations skipped (bad ones under
    ``'warn'``, thin boxes, ``image_id`` not among the images) or whose
    masks mmdet's ``LoadAnnotations`` ignores (a polygon with an odd number
    of coordinates or fewer than three points) are counted, and one warning
    per data set names the file, the count per reason and an example
    record of each.

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
        self._dropped: Counter = Counter()
        self._dropped_example: Dict[str, str] = {}
        self._num_annotations = 0
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as e:
            raise AnnotationError(
                self.ann_file, f'malformed JSON ({e.msg} at line {e.lineno}, '
                f'column {e.colno})') from e
        self._warn_dropped()
        return data_list

    def _drop(self, reason: str, record: str) -> None:
        """Count an annotation that is skipped or ignored, by reason."""
        self._dropped[reason] += 1
        self._dropped_example.setdefault(reason, record)

    def _warn_dropped(self) -> None:
        """One warning for the whole file: what was dropped, and why."""
        if not self._dropped:
            return
        reasons = '; '.join(
            f'{count} {reason} [e.g. {self._dropped_example[reason]}]'
            for reason, count in self._dropped.most_common())
        warnings.warn(
            f'{self.ann_file}: {sum(self._dropped.values())} of '
            f'{self._num_annotations} annotations skipped or ignored: '
            f'{reasons}. Fix these records, or accept the loss.',
            stacklevel=2)

    def _check_orphans(self) -> None:
        """Count the annotations whose ``image_id`` is not an image of the
        file (pycocotools files them under no image: they vanish)."""
        annotations = self.coco.dataset.get('annotations', [])
        self._num_annotations = len(annotations)
        for ann in annotations:
            if ann.get('image_id') not in self.coco.imgs:
                self._drop(
                    'with an image_id not among the images (dropped)',
                    f"annotation id {ann.get('id')} (image id "
                    f"{ann.get('image_id')})")

    def _check_classes(self) -> None:
        names = {cat['name'] for cat in self.coco.cats.values()}
        missing = [c for c in self.metainfo['classes'] if c not in names]
        if missing:
            raise AnnotationError(
                self.ann_file, f'classes {missing} of the config are not '
                f'categories of the file (it has {sorted(names)})')

    def _bad(self, message: str, record: str, reason: str) -> None:
        if self.bad_annotation == 'error':
            raise AnnotationError(self.ann_file, message, record)
        self._drop(f'{reason} (skipped)', f'{record}: {message}')

    def _check_polygons(self, ann: dict, record: str) -> None:
        """Count a polygon mask that mmdet's ``LoadAnnotations`` drops (odd
        number of coordinates or fewer than 3 points)."""
        polygons = ann.get('segmentation')
        if not isinstance(polygons, list):
            return
        bad = [
            p for p in polygons
            if not isinstance(p, (list, tuple)) or len(p) % 2 or len(p) < 6
        ]
        if not bad:
            return
        if len(bad) == len(polygons):
            reason = ('with a malformed polygon (odd number of coordinates '
                      'or fewer than 3 points): the instance is ignored when '
                      'masks are loaded')
        else:
            reason = ('with a malformed part of a polygon (dropped from the '
                      'mask)')
        self._drop(reason, f'{record}: polygon of {len(bad[0])} coordinates')

    def _valid_annotation(self, ann: dict, img_info: dict) -> bool:
        record = f"annotation id {ann.get('id')} (image id " \
                 f"{img_info['img_id']})"
        if ann.get('category_id') not in self.coco.cats:
            self._bad(
                f"category_id {ann.get('category_id')!r} is not among the "
                f'categories of the file {sorted(self.coco.cats)}', record,
                'with an unknown category_id')
            return False
        box = ann.get('bbox')
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(
                isinstance(v, (int, float)) and math.isfinite(v)
                for v in box)):
            self._bad(f'degenerate box {box!r}: expected [x, y, w, h] of 4 '
                      'finite numbers', record, 'with a degenerate box')
            return False
        x, y, w, h = box
        if w <= 0 or h <= 0:
            self._bad(f'degenerate box {box!r}: width and height must be > 0',
                      record, 'with a degenerate box')
            return False
        if x >= img_info['width'] or y >= img_info['height'] or x + w <= 0 \
                or y + h <= 0:
            self._bad(
                f'degenerate box {box!r}: outside the image of size '
                f"{img_info['width']}x{img_info['height']}", record,
                'with a box outside the image')
            return False
        if w < 1 or h < 1 or ann.get('area', 1) <= 0:
            self._drop(
                'with a box thinner than one pixel or area <= 0 (skipped, '
                'as mmdet does)', f'{record}: box {box!r}')
            return False
        self._check_polygons(ann, record)
        return True

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info = raw_data_info['raw_img_info']
        if not self._classes_checked:
            self._check_classes()
            self._check_orphans()
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

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; an image file whose size differs from its
        record raises an :class:`AnnotationError` naming both (instead of
        numpy's "cannot reshape array" from the masks, or boxes silently
        in the wrong place)."""
        data_info = self.get_data_info(idx)
        try:
            results = self.pipeline(data_info)
        except ValueError as e:
            self._check_image_size(data_info, None, e)
            raise
        if isinstance(results, dict) and results.get('data_samples'):
            shape = results['data_samples'].metainfo.get('ori_shape')
            self._check_image_size(data_info, shape)
        return results

    def _check_image_size(self, data_info: dict, shape,
                          cause: Exception = None) -> None:
        """Raise when the loaded image (``shape`` (h, w); read from the file
        when None) is not of the record's size."""
        expected = (data_info.get('height'), data_info.get('width'))
        if shape is None:
            try:
                shape = mmcv.imfrombytes(
                    get(data_info['img_path'],
                        backend_args=self.backend_args)).shape[:2]
            except Exception:  # noqa: BLE001 -- keep the pipeline's error
                return
        if tuple(shape[:2]) == expected:
            return
        raise AnnotationError(
            self.ann_file,
            f"the image file {data_info['img_path']} is {shape[1]}x{shape[0]}"
            f' (width x height) but its record says {expected[1]}x'
            f'{expected[0]}; the annotations do not belong to this file: fix '
            "the record's width / height (and its masks), or regenerate the "
            'images and annotations together',
            f"image id {data_info.get('img_id')}") from cause
