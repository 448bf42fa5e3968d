# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .checkpoint import (
    TRUST_ENV,
    UnsafeCheckpointError,
    load_checkpoint,
    safe_checkpoint_loading,
    trusts_checkpoints,
)
from .checkpoint_config import (
    UnsafeConfigError,
    config_from_checkpoint,
    config_from_text,
)
from .checkpoint_loading import (
    CheckpointMismatchError,
    LoadReport,
    load_backbone_checkpoint,
    load_model_checkpoint,
    load_runner_checkpoint,
)
from .package_resources import (
    PACKAGE_SCHEME,
    is_package_path,
    resolve_package_path,
)
from .setup_env import register_all_modules

__all__ = [
    'PACKAGE_SCHEME', 'is_package_path', 'resolve_package_path',
    'CheckpointMismatchError', 'LoadReport', 'TRUST_ENV',
    'UnsafeCheckpointError', 'UnsafeConfigError', 'config_from_checkpoint',
    'config_from_text', 'load_backbone_checkpoint', 'load_checkpoint',
    'load_model_checkpoint', 'load_runner_checkpoint', 'register_all_modules',
    'safe_checkpoint_loading', 'trusts_checkpoints'
]
