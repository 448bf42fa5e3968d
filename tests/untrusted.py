# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What the checkpoint-safety tests attack with: a pickle that runs a
command when loaded, and a local http server to serve it from."""
import contextlib
import functools
import http.server
import os
import shlex
import threading
from typing import Iterator


class RunsCode:
    """Unpickling this runs ``touch marker`` (what an attacker's file
    does); the marker file tells whether it ran."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(self.marker)}', )


def write_payload(path, marker) -> str:
    """Save a checkpoint (a ``state_dict`` and a ``meta``) whose ``meta``
    holds a :class:`RunsCode`; returns ``str(path)``."""
    import torch
    torch.save(
        dict(state_dict=dict(w=torch.zeros(2)),
             meta=dict(payload=RunsCode(marker))), str(path))
    return str(path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def served_directory(root) -> Iterator[str]:
    """Serve ``root`` over http on 127.0.0.1 (a free port) from a thread
    while the block runs; yields the base URL."""
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0),
        functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
