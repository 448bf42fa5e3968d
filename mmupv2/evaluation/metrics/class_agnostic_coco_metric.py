# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""COCO box / mask AP of class-agnostic proposals ("is it an object")."""
from typing import Optional

from mmdet.evaluation import CocoMetric

from mmupv2.registry import METRICS

#: the one category of class-agnostic evaluation
OBJECT = 'object'


def make_class_agnostic(coco_api) -> None:
    """Turn a loaded COCO annotation file into one category, ``object``
    (id 1), in place: every annotation keeps its box, mask and ``iscrowd``
    and gets category 1; the index (``cats``, ``catToImgs`` ...) is
    rebuilt."""
    dataset = coco_api.dataset
    for ann in dataset.get('annotations', []):
        ann['category_id'] = 1
    dataset['categories'] = [dict(id=1, name=OBJECT, supercategory=OBJECT)]
    coco_api.createIndex()


@METRICS.register_module()
class ClassAgnosticCocoMetric(CocoMetric):
    """mmdet's :class:`~mmdet.evaluation.CocoMetric` on class-agnostic
    proposals: the ground truth of ``ann_file`` (a COCO instances file of
    any categories) is read as one category, ``object``, and every
    prediction's label must be 0 (``ClassAgnosticProposer``'s). Whatever
    class names the data set has, the metric's are ``('object', )``.

    The proposal pre-training (``configs/proposal_pretrain/``) reports
    ``<prefix>/bbox_mAP`` and ``<prefix>/segm_mAP`` with it: how well the
    region proposal network finds (and outlines) objects, not what they
    are.

    Args:
        ann_file (str): COCO instances annotation file (required: the class
            -agnostic ground truth is made from it).
        **kwargs: see :class:`~mmdet.evaluation.CocoMetric`
            (``classwise`` is refused: there is one class).
    """

    def __init__(self, ann_file: Optional[str] = None, **kwargs) -> None:
        if ann_file is None:
            raise ValueError('ClassAgnosticCocoMetric needs ann_file (the '
                             'COCO instances file to read as one category)')
        if kwargs.get('classwise'):
            raise ValueError('ClassAgnosticCocoMetric: classwise=True has '
                             'no meaning with one category')
        super().__init__(ann_file=ann_file, **kwargs)
        make_class_agnostic(self._coco_api)
        self._dataset_meta = dict(classes=(OBJECT, ))

    @property
    def dataset_meta(self) -> dict:
        """``classes=('object', )`` whatever the data set's names."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        self._dataset_meta = dict(meta or {}, classes=(OBJECT, ))
