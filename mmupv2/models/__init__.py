# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .backbones import *  # noqa: F401,F403
from .data_preprocessor import UPv2DataPreprocessor
from .decoders import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .image_encoders import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .region_proposal import *  # noqa: F401,F403
from .tasks import *  # noqa: F401,F403
from .text_encoders import *  # noqa: F401,F403
from .uniperceiver_v2 import UniPerceiverV2

__all__ = ['UPv2DataPreprocessor', 'UniPerceiverV2']
