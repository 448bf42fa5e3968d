# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
from mmengine.logging import MMLogger

from mmupv2.datasets.shapes import generate_shapes

from .logs import recorded_warnings
from .untrusted import served_directory


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> str:
    """A small shapes benchmark (12 train / 6 val images of 96x96), generated
    once per test session."""
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes(str(root), num_train=12, num_val=6, seed=3, img_size=96)
    return str(root)


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """``(folder, base URL)``: an http server on 127.0.0.1 serving the
    folder, in a thread, for the test; downloads go under tmp_path."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with served_directory(root) as base:
        yield root, base


@pytest.fixture
def warnings_logged():
    """The warnings mmengine's current logger prints meanwhile."""
    with recorded_warnings(MMLogger.get_current_instance()) as messages:
        yield messages
