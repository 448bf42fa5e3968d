# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Import a command-line script (tools/...) as a module, for its tests."""
import importlib.util
import os.path as osp
from types import ModuleType


def load_script(path: str) -> ModuleType:
    """The script at ``path`` as a module named after its file."""
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
