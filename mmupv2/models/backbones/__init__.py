# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .clip_resnet import CLIPModifiedResNet
from .efficientnet_lite import EfficientNetLite
from .efficientnet_lite_conversion import (
    TIMM_MODEL_NAMES,
    convert_efficientnet_lite,
    load_efficientnet_lite_checkpoint,
    to_timm_state_dict,
)

__all__ = [
    'CLIPModifiedResNet', 'EfficientNetLite', 'TIMM_MODEL_NAMES',
    'convert_efficientnet_lite', 'load_efficientnet_lite_checkpoint',
    'to_timm_state_dict'
]
