# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmupv2: Uni-Perceiver v2 as an OpenMMLab toolbox."""
# registers the package:// checkpoint scheme with mmengine (an added scheme;
# mmengine's own loaders are left as they are, see docs/checkpoints.md)
from . import utils  # noqa: F401
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
