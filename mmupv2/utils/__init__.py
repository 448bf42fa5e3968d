# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .checkpoint import (
                         load_local_checkpoint,
                         register_local_checkpoint_loader,
                         trusts_local_checkpoints,
)
from .checkpoint_loading import (
    CheckpointMismatchError as CheckpointMismatchError,
)
from .checkpoint_loading import LoadReport as LoadReport
from .checkpoint_loading import (
    load_backbone_checkpoint as load_backbone_checkpoint,
)
from .checkpoint_loading import (
    load_model_checkpoint as load_model_checkpoint,
)
from .setup_env import register_all_modules

__all__ = [
    'load_local_checkpoint', 'register_all_modules',
    'register_local_checkpoint_loader', 'trusts_local_checkpoints'
]
