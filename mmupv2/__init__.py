# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmupv2: Uni-Perceiver v2 as an OpenMMLab toolbox."""
from .utils.checkpoint import register_local_checkpoint_loader
from .version import __version__, version_info

# mmengine 0.10.7 cannot resume its own checkpoints under torch >= 2.6;
# see mmupv2/utils/checkpoint.py for the fix and why it is this one.
register_local_checkpoint_loader()

__all__ = ['__version__', 'version_info']
