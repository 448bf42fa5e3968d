# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Say which file is not a checkpoint, and why, when ``torch.load`` fails.

``torch.load`` on a broken file fails with messages that name neither the
file nor the cause: a truncated download or copy gives
``PytorchStreamReader failed reading zip archive: failed finding central
directory``, a text file (a config, an HTML error page) given as
``--weights`` gives ``invalid load key, '#'``. Once the load has failed,
:func:`unreadable_reason` looks at the file's first bytes and its zip
directory; :func:`names_unreadable_file` turns the failure into an
:class:`InvalidCheckpointError` that names the file, what it is, and what
to do. A file that looks like a checkpoint keeps torch's error (nothing is
checked before or on success: no valid file can be refused).
"""
import functools
import io
import os
import zipfile
from typing import IO, Any, Callable, Optional, Union

#: Bytes shown of a file that is no checkpoint.
_HEAD = 24
#: What ``torch.save`` writes: a zip archive (torch >= 1.6), or a pickle
#: (protocol 2+: first byte 0x80) in the legacy format.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_MAGIC = b'\x80'


class InvalidCheckpointError(RuntimeError):
    """The file is not a (complete) PyTorch checkpoint.

    Attributes:
        source: the file as the user named it.
        reason: what is wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(
            f'{source} is not a valid PyTorch checkpoint: {reason}. Pass the '
            '.pth file that training wrote (e.g. work_dirs/<config>/'
            'iter_<N>.pth) as --weights / load_from / --resume, and download '
            'or copy it again if it is incomplete.')


def _read_head(f: Union[str, IO[bytes]]) -> Optional[tuple]:
    """(size, first bytes) of a path or a seekable binary file."""
    try:
        if isinstance(f, (str, os.PathLike)):
            with open(f, 'rb') as fh:
                return os.fstat(fh.fileno()).st_size, fh.read(_HEAD)
        position = f.tell()
        f.seek(0, io.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(_HEAD)
        f.seek(position)
        return size, head
    except (OSError, ValueError, AttributeError):
        return None


def unreadable_reason(f: Union[str, IO[bytes]]) -> Optional[str]:
    """Why ``f`` (a path or a seekable binary file) cannot be a PyTorch
    checkpoint, or None when it looks like one.

    Returns:
        str | None: e.g. ``'the file is empty'``, ``'the zip archive is
        truncated or damaged (12345 bytes) ...'``, ``"it is not a zip
        archive or a pickle; it starts with b'# a config'"``.
    """
    found = _read_head(f)
    if found is None:
        return None
    size, head = found
    if size == 0:
        return 'the file is empty (0 bytes)'
    if head.startswith(_ZIP_MAGIC):
        try:
            if isinstance(f, (str, os.PathLike)):
                with zipfile.ZipFile(f) as archive:
                    bad = archive.testzip() if size < 2**20 else None
            else:
                position = f.tell()
                try:
                    with zipfile.ZipFile(f) as archive:
                        bad = archive.testzip() if size < 2**20 else None
                finally:
                    f.seek(position)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            return (f'the zip archive is truncated or damaged ({size} bytes;'
                    f' {e}): an interrupted download, copy or save')
        if bad is not None:
            return f'the zip archive is damaged (member {bad!r})'
        return None
    if head.startswith(_PICKLE_MAGIC):
        return None  # a legacy checkpoint: torch's own error says more
    return (f'it is neither a zip archive nor a pickle ({size} bytes, '
            f'starting with {head!r}): a text or other file')


def names_unreadable_file(load: Callable) -> Callable:
    """Decorate a loader ``load(f, source, *args, **kwargs)``: when it
    raises and :func:`unreadable_reason` finds ``f`` is not a checkpoint,
    raise :class:`InvalidCheckpointError` naming ``source`` instead (the
    original error is chained)."""

    @functools.wraps(load)
    def wrapper(f: Union[str, IO[bytes]], source: str, *args,
                **kwargs) -> Any:
        try:
            return load(f, source, *args, **kwargs)
        except Exception as error:
            reason = unreadable_reason(f)
            if reason is None:
                raise
            raise InvalidCheckpointError(source, reason) from error

    return wrapper
