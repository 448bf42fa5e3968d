# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Shrink images whose longer side exceeds a limit; leave the others."""
from mmdet.datasets.transforms import Resize
from mmdet.structures.bbox import autocast_box_type

from mmupv2.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LimitImageSize(Resize):
    """Downscale an image (and its boxes, masks and segmentation map) so
    that its longer side is at most ``max_size``, keeping the aspect ratio;
    an image that already fits passes unchanged (never upsampled, unlike
    mmdet's ``Resize(keep_ratio=True)``).

    Put it after any other resize: ``scale_factor`` is *composed* with the
    one an earlier resize recorded, so that predictions divided by it land
    in the original image's pixels (``ori_shape``), as mmdet's heads expect.
    It bounds the memory of one image: a 4000x4000 photo through a model
    trained on small images would otherwise go in at full size.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``,
    ``gt_bboxes``, ``gt_masks``, ``gt_seg_map``. Added keys: ``scale``,
    ``scale_factor``, ``keep_ratio``, ``homography_matrix``.

    Args:
        max_size: the largest allowed height and width, in pixels.
        interpolation: as mmdet's ``Resize``.
        backend: ``'cv2'`` or ``'pillow'``.
    """

    def __init__(self,
                 max_size: int,
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2') -> None:
        if not isinstance(max_size, int) or max_size < 1:
            raise ValueError(
                f'LimitImageSize: max_size must be an int >= 1, got '
                f'{max_size!r}')
        super().__init__(
            scale=(max_size, max_size),
            keep_ratio=False,
            interpolation=interpolation,
            backend=backend)
        self.max_size = max_size

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        if max(height, width) <= self.max_size:
            return results
        ratio = self.max_size / max(height, width)
        previous = results.get('scale_factor')
        results['scale'] = (max(1, round(width * ratio)),
                            max(1, round(height * ratio)))
        self._resize_img(results)
        self._resize_bboxes(results)
        self._resize_masks(results)
        self._resize_seg(results)
        self._record_homography_matrix(results)
        if previous is not None:
            w_scale, h_scale = results['scale_factor']
            results['scale_factor'] = (previous[0] * w_scale,
                                       previous[1] * h_scale)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_size={self.max_size}, '
                f'interpolation={self.interpolation}, '
                f'backend={self.backend})')
