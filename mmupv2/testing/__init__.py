# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Small, fast stand-ins for tests and smoke runs."""
from .stub_image_encoder import StubImageEncoder
from .toy_multitask import ToyMultiTaskModel, ToyTaskDataset

__all__ = ['StubImageEncoder', 'ToyMultiTaskModel', 'ToyTaskDataset']
