# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import os

import pytest


@pytest.fixture
def shapes_cwd(tmp_path, shapes_root, monkeypatch):
    """A working directory whose ``data/shapes`` (the tiny config's data
    root) is the session's small shapes benchmark."""
    (tmp_path / 'data').mkdir()
    os.symlink(shapes_root, tmp_path / 'data' / 'shapes')
    monkeypatch.chdir(tmp_path)
    return tmp_path
