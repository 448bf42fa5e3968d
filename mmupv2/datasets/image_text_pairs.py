# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Web image-text pairs (CC3M, CC12M, SBU, Visual Genome, YFCC) in one
documented format, as JSON lines or TSV."""
import json
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset
from mmengine.fileio import get_file_backend

from mmupv2.registry import DATASETS

from .errors import AnnotationError
from .task_dataset import TaskDatasetMixin


@DATASETS.register_module()
class ImageTextPairDataset(TaskDatasetMixin, BaseDataset):
    """Image-text pairs for captioning or retrieval training.

    File formats (chosen by the extension of ``ann_file``, or ``file_format``):

    - ``.jsonl``: one JSON object per line, ``{"image": "<path relative to
      data_prefix>", "caption": "<text>"}``; other keys are ignored.
    - ``.tsv``: one ``<path>\\t<caption>`` per line, no header.

    Each sample has ``img_path``, ``gt_caption`` (the caption) and ``text``
    (the same caption, for the text side of retrieval). The converters in
    ``tools/dataset_converters/`` write this format.

    Errors (:class:`~mmupv2.datasets.errors.AnnotationError`, naming the file
    and line): malformed JSON, a missing ``image`` / ``caption``, an empty
    caption, a TSV line without exactly two fields.

    Args:
        task: ``'captioning'`` (default) or ``'retrieval'``.
        file_format: ``'auto'`` (by extension), ``'jsonl'`` or ``'tsv'``.
    """
    default_task = 'captioning'

    def __init__(self, *args, file_format: str = 'auto', **kwargs) -> None:
        if file_format not in ('auto', 'jsonl', 'tsv'):
            raise ValueError("file_format must be 'auto', 'jsonl' or 'tsv', "
                             f'got {file_format!r}')
        self.file_format = file_format
        super().__init__(*args, **kwargs)

    def _format(self) -> str:
        if self.file_format != 'auto':
            return self.file_format
        ext = osp.splitext(self.ann_file)[1].lower()
        if ext in ('.jsonl', '.json'):
            return 'jsonl'
        if ext in ('.tsv', '.txt'):
            return 'tsv'
        raise AnnotationError(
            self.ann_file, f"cannot tell the format from the extension {ext!r}"
            "; set file_format='jsonl' or 'tsv'")

    def _parse_line(self, line: str, fmt: str, lineno: int) -> tuple:
        where = f'line {lineno}'
        if fmt == 'tsv':
            fields = line.split('\t')
            if len(fields) != 2:
                raise AnnotationError(
                    self.ann_file, 'expected <image path>\\t<caption>, got '
                    f'{len(fields)} field(s)', where)
            image, caption = fields
        else:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise AnnotationError(self.ann_file,
                                      f'malformed JSON ({e.msg})',
                                      where) from e
            if not isinstance(record, dict) or 'image' not in record \
                    or 'caption' not in record:
                raise AnnotationError(
                    self.ann_file,
                    "expected an object with 'image' and 'caption'", where)
            image, caption = record['image'], record['caption']
        if not isinstance(caption, str) or not caption.strip():
            raise AnnotationError(self.ann_file, 'empty caption', where)
        if not isinstance(image, str) or not image.strip():
            raise AnnotationError(self.ann_file, 'empty image path', where)
        return image.strip(), caption.strip()

    def load_data_list(self) -> List[dict]:
        fmt = self._format()
        img_prefix = self.data_prefix.get('img_path', '')
        backend = get_file_backend(img_prefix, enable_singleton=True)
        data_list = []
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip('\n')
                if not line.strip():
                    continue
                image, caption = self._parse_line(line, fmt, lineno)
                data_list.append(
                    dict(img_path=backend.join_path(img_prefix, image),
                         gt_caption=caption, text=caption))
        return data_list
