# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Reading what a logger warned about, for the tests."""
import contextlib
import logging
from typing import Iterator, List


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def recorded_warnings(logger: logging.Logger) -> Iterator[List[str]]:
    """The messages of the warnings (and errors) ``logger`` emits while the
    block runs, as a list filled meanwhile."""
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
