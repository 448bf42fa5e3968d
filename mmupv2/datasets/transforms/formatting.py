# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Pack a pipeline's result into ``inputs`` + :class:`UPv2DataSample`."""
import numpy as np
from mmdet.datasets.transforms import PackDetInputs

from mmupv2.registry import TRANSFORMS
from mmupv2.structures import UPv2DataSample


@TRANSFORMS.register_module()
class PackUPv2Inputs(PackDetInputs):
    """Pack the data of any task.

    The image and the instance annotations are packed by mmdet's
    :class:`~mmdet.datasets.transforms.PackDetInputs` (CHW uint8 tensor;
    ``gt_bboxes`` -> ``gt_instances.bboxes`` etc., ignored instances apart);
    then the task fields are added: ``gt_label`` (classification),
    ``gt_caption`` (captioning / retrieval), ``text`` (text-side samples),
    and the retrieval indices (``image_id``, ``text_id``, ``gt_image_id``,
    ``gt_text_id``) as meta information.

    A text-only sample (MLM, a retrieval text) has no ``inputs`` key.

    An image flipped by a view (``img[:, ::-1]``, as ``RandomFlip`` does)
    is copied when it has a negative stride: for an image one pixel wide or
    high numpy still calls the view contiguous, ``PackDetInputs`` skips its
    copy, and ``torch.from_numpy`` refuses it.

    Raises:
        KeyError: the result has no ``task`` (every mmupv2 data set sets it).
    """

    DEFAULT_META_KEYS = ('task', 'dataset_name', 'img_id', 'image_id',
                         'text_id', 'gt_image_id', 'gt_text_id', 'img_path',
                         'ori_shape', 'img_shape', 'scale_factor', 'flip',
                         'flip_direction')

    def __init__(self, meta_keys=DEFAULT_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        if 'task' not in results:
            raise KeyError(
                "PackUPv2Inputs: the sample has no 'task'; build it with an "
                f'mmupv2 data set (keys: {sorted(results)})')
        img = results.get('img')
        if isinstance(img, np.ndarray) and any(s < 0 for s in img.strides):
            results['img'] = img.copy()
        packed = super().transform(results)
        det_sample = packed['data_samples']
        sample = UPv2DataSample(metainfo=det_sample.metainfo)
        for key in ('gt_instances', 'ignored_instances'):
            setattr(sample, key, getattr(det_sample, key))
        sample.set_task(results['task'])
        if 'gt_label' in results:
            sample.set_gt_label(results['gt_label'])
        if 'gt_caption' in results:
            sample.set_gt_caption(results['gt_caption'])
        if isinstance(results.get('text'), str):
            sample.set_text(results['text'])
        elif isinstance(results.get('text'), list):
            # a retrieval test image: the texts that match it
            sample.set_gt_caption(results['text'])
        packed['data_samples'] = sample
        return packed
