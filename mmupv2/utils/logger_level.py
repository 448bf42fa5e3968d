# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmengine's current logger at another level for a block, then back."""
import contextlib
from typing import Iterator, Union

from mmengine.logging import MMLogger


@contextlib.contextmanager
def current_logger_level(level: Union[int, str]) -> Iterator[None]:
    """Set mmengine's current logger to ``level`` (e.g. ``'ERROR'`` to quiet
    a tool's measurements) within the block; the level it had comes back
    after, so later warnings still reach the caller."""
    logger = MMLogger.get_current_instance()
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)
