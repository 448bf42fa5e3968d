# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .checkpoint import (
    load_local_checkpoint,
    register_local_checkpoint_loader,
    trusts_local_checkpoints,
)
from .checkpoint_loading import (
    CheckpointMismatchError,
    LoadReport,
    load_backbone_checkpoint,
    load_model_checkpoint,
)
from .package_resources import (
    PACKAGE_SCHEME,
    is_package_path,
    resolve_package_path,
)
from .setup_env import register_all_modules

__all__ = [
    'PACKAGE_SCHEME', 'is_package_path', 'resolve_package_path',
    'CheckpointMismatchError', 'LoadReport', 'load_backbone_checkpoint',
    'load_local_checkpoint', 'load_model_checkpoint', 'register_all_modules',
    'register_local_checkpoint_loader', 'trusts_local_checkpoints'
]
