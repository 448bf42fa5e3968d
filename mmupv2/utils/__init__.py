# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .checkpoint import (
                         load_local_checkpoint,
                         register_local_checkpoint_loader,
                         trusts_local_checkpoints,
)
from .setup_env import register_all_modules

__all__ = [
    'load_local_checkpoint', 'register_all_modules',
    'register_local_checkpoint_loader', 'trusts_local_checkpoints'
]
