# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Captioning and retrieval from Karpathy-split files (``dataset_coco.json``,
``dataset_flickr30k.json``, the shapes benchmark's ``karpathy_shapes.json``).

The format: ``{"images": [{"filepath": "val2014", "filename": "x.jpg",
"imgid": 0, "split": "test", "cocoid": 391895, "sentences": [{"raw": "A man
...", "sentid": 0}, ...]}, ...]}``; ``filepath`` is absent in Flickr30k and
``cocoid`` outside COCO.
"""
from typing import Dict, List, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.fileio import get_file_backend

from mmupv2.registry import DATASETS

from .errors import AnnotationError, load_json_file
from .task_dataset import TaskDatasetMixin


class _KarpathyDataset(TaskDatasetMixin, BaseDataset):
    """Reads and checks the images of the requested split(s).

    Args:
        split: a split name or several (COCO training uses
            ``('train', 'restval')``).
        **kwargs: arguments of mmengine's ``BaseDataset`` (``data_root``,
            ``ann_file``, ``data_prefix=dict(img_path=...)``, ``pipeline``,
            ``test_mode`` ...).
    """

    def __init__(self, *args, split: Union[str, Sequence[str]] = 'train',
                 **kwargs) -> None:
        self.splits = (split, ) if isinstance(split, str) else tuple(split)
        super().__init__(*args, **kwargs)

    def _load_images(self) -> List[Dict]:
        """Records of the requested split(s): ``img_path``, ``image_id``
        (``cocoid`` if present, else ``imgid``), ``sentences``
        (list of ``(sentid, raw)``)."""
        data = load_json_file(self.ann_file)
        if not isinstance(data, dict) or not isinstance(
                data.get('images'), list):
            raise AnnotationError(
                self.ann_file, 'expected a Karpathy-split file: an object '
                "with an 'images' list")
        img_prefix = self.data_prefix.get('img_path', '')
        backend = get_file_backend(img_prefix, enable_singleton=True)
        images = []
        for idx, img in enumerate(data['images']):
            missing = [
                k for k in ('filename', 'imgid', 'split', 'sentences')
                if k not in img
            ]
            if missing:
                raise AnnotationError(self.ann_file,
                                      f'image record lacks {missing}',
                                      f'images[{idx}]')
            if img['split'] not in self.splits:
                continue
            if not img['sentences'] or not all(
                    isinstance(s, dict) and isinstance(s.get('raw'), str)
                    and s['raw'].strip() for s in img['sentences']):
                raise AnnotationError(
                    self.ann_file, "every sentence needs a non-empty 'raw' "
                    'text', f"images[{idx}] (imgid {img['imgid']})")
            rel_path = '/'.join(
                p for p in (img.get('filepath', ''), img['filename']) if p)
            images.append(
                dict(img_path=backend.join_path(img_prefix, rel_path),
                     image_id=img.get('cocoid', img['imgid']),
                     sentences=[(s.get('sentid', -1), s['raw'].strip())
                                for s in img['sentences']]))
        if not images:
            raise AnnotationError(
                self.ann_file, f'no image of split {list(self.splits)}')
        return images


@DATASETS.register_module()
class KarpathyCaptionDataset(_KarpathyDataset):
    """Image captioning on a Karpathy split.

    Training (``test_mode=False``): one sample per (image, sentence), with
    ``gt_caption`` the sentence. Testing: one sample per image, with
    ``gt_caption`` all its sentences and ``image_id`` the id the COCO-caption
    ground-truth file of the metric uses (``cocoid`` for COCO).
    """
    default_task = 'captioning'

    def load_data_list(self) -> List[dict]:
        data_list = []
        for img in self._load_images():
            captions = [raw for _, raw in img['sentences']]
            if self.test_mode:
                data_list.append(
                    dict(img_path=img['img_path'], image_id=img['image_id'],
                         gt_caption=captions))
            else:
                data_list.extend(
                    dict(img_path=img['img_path'], image_id=img['image_id'],
                         gt_caption=cap) for cap in captions)
        return data_list


@DATASETS.register_module()
class KarpathyRetrievalDataset(_KarpathyDataset):
    """Image-text retrieval on a Karpathy split (COCO 5k, Flickr30k 1k).

    The fields follow mmpretrain's ``Flickr30kRetrieval`` so its
    ``RetrievalRecall`` and retrieval loop read them. Training: one sample per
    (image, text) pair with ``image_id`` / ``text_id`` indices of the split.
    Testing: one sample per image with ``text`` (its sentences),
    ``gt_text_id`` (their indices among all texts of the split) and
    ``gt_image_id``; ``img_size`` / ``text_size`` give the gallery sizes.
    """
    default_task = 'retrieval'

    def load_data_list(self) -> List[dict]:
        pairs, images = [], []
        for image_idx, img in enumerate(self._load_images()):
            record = dict(img_path=img['img_path'], image_id=image_idx,
                          ori_id=img['image_id'], text=[], gt_text_id=[],
                          gt_image_id=[])
            for _, raw in img['sentences']:
                text_id = len(pairs)
                pairs.append(
                    dict(img_path=img['img_path'], image_id=image_idx,
                         text_id=text_id, text=raw))
                record['text'].append(raw)
                record['gt_text_id'].append(text_id)
                record['gt_image_id'].append(image_idx)
            images.append(record)
        self.img_size, self.text_size = len(images), len(pairs)
        return images if self.test_mode else pairs
