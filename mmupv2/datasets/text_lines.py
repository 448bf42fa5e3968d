# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Plain text, one sample per line (Books&Wiki; masked language modelling)."""
from typing import List

from mmengine.dataset import BaseDataset

from mmupv2.registry import DATASETS

from .errors import AnnotationError
from .task_dataset import TaskDatasetMixin


@DATASETS.register_module()
class TextLinesDataset(TaskDatasetMixin, BaseDataset):
    """Text lines of a UTF-8 file; blank lines are skipped.

    Each sample has ``text``. Tokenisation and masking happen in the model
    (the tokenizer belongs to the text encoder), so the file is read as is.

    Args:
        min_chars: lines shorter than this (after stripping) are skipped.
        **kwargs: arguments of mmengine's ``BaseDataset`` (``ann_file`` is the
            text file).
    """
    default_task = 'mlm'

    def __init__(self, *args, min_chars: int = 1, **kwargs) -> None:
        self.min_chars = min_chars
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        with open(self.ann_file, 'rb') as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode('utf-8').strip()
                except UnicodeDecodeError as e:
                    raise AnnotationError(self.ann_file,
                                          f'not UTF-8 text ({e.reason})',
                                          f'line {lineno}') from e
                if len(line) >= self.min_chars:
                    data_list.append(dict(text=line))
        if not data_list:
            raise AnnotationError(self.ann_file, 'no text line')
        return data_list
