# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Errors for bad data-set input: every message names the file and the
record, so a broken annotation is found without a debugger."""
import json
import os.path as osp
from typing import Any, Callable, Optional


class AnnotationError(ValueError):
    """A bad annotation file or record.

    Args:
        file: the annotation file.
        message: what is wrong.
        record: the record (e.g. ``'annotation id 7 (image id 3)'`` or
            ``'line 12'``), if the file as a whole is not the problem.
    """

    def __init__(self, file: str, message: str,
                 record: Optional[str] = None) -> None:
        self.file = file
        self.record = record
        where = f'{file}, {record}' if record else file
        super().__init__(f'{where}: {message}')


def check_path_exists(path: Optional[str], key: str, owner: str) -> None:
    """Raise ``FileNotFoundError`` naming the config key ``key`` of ``owner``
    when the local ``path`` does not exist (remote URIs are not checked)."""
    if not path or '://' in path:
        return
    if not osp.exists(path):
        raise FileNotFoundError(
            f'{owner}: {key}={path!r} does not exist')


def load_json_file(path: str, loader: Callable[[str], Any] = None) -> Any:
    """Load a JSON file, turning a decoding error into an
    :class:`AnnotationError` that names the file and the line."""
    try:
        if loader is not None:
            return loader(path)
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(
            path, f'malformed JSON ({e.msg} at line {e.lineno}, column '
            f'{e.colno})') from e
