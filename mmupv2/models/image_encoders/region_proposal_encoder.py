# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""f_image: an image as global tokens and general region proposals."""
import logging
import math
import os.path as osp
from collections import Counter, OrderedDict
from contextlib import nullcontext
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from mmupv2.models.layers import PaddingMasker, padding_masks
from mmupv2.registry import MODELS
from mmupv2.utils.checkpoint_loading import (
    LoadReport,
    checkpoint_state_dict,
    load_state_dict_checked,
    strip_prefix,
)

from .global_tokens import GlobalTokens
from .outputs import ImageEncoderOutput, check_loss_targets
from .proposal_fusion import ProposalFusion

#: the parts that the proposal pre-training trains (``ClassAgnosticProposer``)
PROPOSAL_PARTS = ('backbone', 'neck', 'proposal_network')
#: where an mmupv2 model keeps its image encoder's keys
ENCODER_PREFIX = 'image_encoder.'


@MODELS.register_module()
class RegionProposalImageEncoder(BaseModule):
    """The image encoder of Uni-Perceiver v2 (paper Sec. 4.1, Appendix A).

    ``f_image(x) = [global tokens ; regional tokens]``, returned apart in an
    :class:`ImageEncoderOutput`. Shapes (B images padded to H x W, d the
    hidden dimension, N queries, O regional tokens, M' pools)::

        inputs (B, 3, H, W)
          | backbone (mmpretrain ResNet / Swin), strides 4, 8, 16, 32
          | neck: mmdet ChannelMapper, 1x1 conv + GN to d on each scale,
          |       3x3 stride-2 conv + GN on the stride-32 backbone map
          v
        F'_0 (B, d, H/4, W/4), F'_1..F'_4 (B, d, H/8 .. H/64, ...)
          |                                 |
          |    F'_3 (stride 32) = F_L --> GlobalTokens --> global tokens
          |                                 (B, M' + H/32*W/32, d) + mask
          v
        proposal network (BinaryMaskDINO) on F'_1..F'_4, masks on F'_0
          --> q_sem (B, N, d), boxes (B, N, 4), masks (B, N, H/4, W/4)
          --> ProposalFusion --> top-O regional tokens (B, O, d) with
              boxes, masks, objectness
          with_loss=True: BinaryMaskDINOCriterion --> losses, matched
              indices (asked for by detection / instance segmentation)

    ``F_L`` is the stride-32 map: Eq. 3 takes "the last-scale feature map",
    and the paper's scales are the four backbone scales (strides 4-32); the
    extra stride-64 map is an input of the transformer only. It is taken
    after the neck's 1x1 conv + GN, which gives it the dimension d of the
    other tokens.

    Args:
        backbone (dict): config of a backbone with four outputs at strides
            4, 8, 16, 32, e.g. ``type='mmpretrain.ResNet', depth=50,
            out_indices=(0, 1, 2, 3)``.
        neck (dict): config of the channel mapper with five outputs (the
            four scales and the extra stride-64 one), e.g.
            ``type='mmdet.ChannelMapper', kernel_size=1, num_outs=5,
            norm_cfg=dict(type='GN', num_groups=32), act_cfg=None``.
        proposal_network (dict): config of the proposal network,
            ``type='BinaryMaskDINO'`` and its arguments.
        criterion (dict, optional): config of the proposal losses; defaults
            to ``BinaryMaskDINOCriterion`` with Table 7's settings.
        num_regional_tokens (int): O, 200 in the paper.
        num_global_pools (int): M', 10 in the paper.
        mask_pool_size (int): side of the pooled mask in Eq. 2 (28).
        mask_padding (bool): keep the batch padding out of the backbone's,
            the neck's and the mask branch's convolutions, pools and
            GroupNorms (:class:`PaddingMasker`), so that an image gives
            the same tokens and proposals in any batch. Default True.
        pretrained (str, optional): a checkpoint of a whole image encoder
            (e.g. the proposal pre-training of
            ``configs/proposal_pretrain/``, a ``ClassAgnosticProposer``, or
            any ``UniPerceiverV2``) whose ``pretrained_parts`` are loaded in
            :meth:`init_weights`, after the parts' own initialisation, with
            a check of every key (the paper's ablations start from "an
            image encoder pre-trained on COCO detection", region proposal
            network included, Sec. 5.3). The keys are read under
            ``image_encoder.`` if the checkpoint has that prefix, else as
            they are. What was loaded is logged per part.
        pretrained_parts (sequence[str]): the children loaded from
            ``pretrained``; every key of them must be in the checkpoint
            (the others keep their initialisation: by default the fusion
            and the global pools, which the proposal pre-training does not
            train).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 *,
                 backbone: ConfigType,
                 neck: ConfigType,
                 proposal_network: ConfigType,
                 criterion: OptConfigType = None,
                 num_regional_tokens: int = 200,
                 num_global_pools: int = 10,
                 mask_pool_size: int = 28,
                 mask_padding: bool = True,
                 pretrained: Optional[str] = None,
                 pretrained_parts: Sequence[str] = PROPOSAL_PARTS,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained
        self.pretrained_parts = tuple(pretrained_parts)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.proposal_network = MODELS.build(proposal_network)
        embed_dims = self.proposal_network.embed_dims
        self.fusion = ProposalFusion(
            embed_dims=embed_dims,
            num_proposals=num_regional_tokens,
            mask_pool_size=mask_pool_size)
        self.global_tokens = GlobalTokens(
            embed_dims=embed_dims, num_pools=num_global_pools)
        self.criterion = MODELS.build(
            criterion or dict(type='BinaryMaskDINOCriterion'))
        # not a submodule: hooks only, no parameters or state
        self._padding_masker = PaddingMasker(
            nn.ModuleList([self.backbone, self.neck,
                           self.proposal_network])) if mask_padding else None
        unknown = [p for p in self.pretrained_parts
                   if not isinstance(getattr(self, p, None), nn.Module)]
        if unknown:
            raise ValueError(
                f'RegionProposalImageEncoder: pretrained_parts {unknown} are '
                'not parts of the encoder; its parts are '
                f'{[n for n, _ in self.named_children()]}')

    def init_weights(self) -> None:
        """mmengine's initialisation of every part, then the ``pretrained``
        image encoder (see the class docstring)."""
        first_time = not self._is_init
        super().init_weights()
        if first_time and self.pretrained is not None:
            self.load_pretrained(self.pretrained)

    def load_pretrained(self, checkpoint: str) -> LoadReport:
        """Load ``pretrained_parts`` from a whole-image-encoder checkpoint.

        Args:
            checkpoint (str): path / URL of an mmupv2 model
                (``image_encoder.*`` keys) or of an image encoder's state
                dict.

        Returns:
            LoadReport: what was loaded.

        Raises:
            FileNotFoundError: no such local file (named, with how to make
                it).
            CheckpointMismatchError: a key of a pretrained part is missing
                from the checkpoint or has another shape (every key named).
        """
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'RegionProposalImageEncoder: pretrained checkpoint '
                f'{checkpoint!r} not found. The ResNet-50 ablations start '
                'from the proposal pre-training: python tools/train.py '
                'configs/proposal_pretrain/'
                'upv2-proposer_r50_16xb1-12e_coco.py (docs/model_zoo.md); '
                'or set model.image_encoder.pretrained=None to start from '
                'the backbone\'s own init_cfg')
        state_dict = checkpoint_state_dict(checkpoint)
        prefix = ENCODER_PREFIX if any(
            k.startswith(ENCODER_PREFIX) for k in state_dict) else ''
        if prefix:
            state_dict = strip_prefix(state_dict, prefix, checkpoint)
        parts = self.pretrained_parts
        wanted = OrderedDict((k, v) for k, v in state_dict.items()
                             if k.split('.')[0] in parts)
        others = [n for n, m in self.named_children()
                  if n not in parts and m.state_dict()]
        report = load_state_dict_checked(
            self, wanted, strict=True,
            source=f'{checkpoint} [{prefix or "no prefix"}]',
            allow_missing=[rf'{n}\.' for n in others])
        loaded = Counter(k.split('.')[0] for k in wanted)
        print_log(
            f'RegionProposalImageEncoder: loaded {report.num_loaded} tensors '
            f'of {checkpoint} [{prefix or "no prefix"}]: ' + ', '.join(
                f'{p} {loaded[p]}' for p in parts) +
            (f'; kept their initialisation: {", ".join(others)}'
             if others else ''),
            logger='current', level=logging.INFO)
        return report

    @property
    def embed_dims(self) -> int:
        """d, the dimension of every token."""
        return self.proposal_network.embed_dims

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone and neck.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised, padded images.

        Returns:
            tuple[Tensor]: five (B, d, H/s, W/s) maps, s = 4, 8, 16, 32, 64.
        """
        feats = self.neck(self.backbone(inputs))
        expected = self.proposal_network.num_levels + 1
        if len(feats) != expected:
            raise ValueError(
                f'the backbone and neck give {len(feats)} maps; the encoder '
                f'needs {expected} (stride 4 and the '
                f'{expected - 1} levels of the proposal network)')
        return feats

    def forward(self,
                inputs: Tensor,
                data_samples: SampleList,
                with_loss: bool = False) -> ImageEncoderOutput:
        """Encode a batch of images.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images, padded at the
                bottom and right to a common size (mmdet's data
                preprocessor).
            data_samples (list[UPv2DataSample]): B samples with meta
                information ``img_shape`` (unpadded size) and
                ``batch_input_shape`` (H, W), and, with the loss,
                ``gt_instances`` (``bboxes`` xyxy pixels, ``masks``).
            with_loss (bool): also run the proposal network's training
                forward (denoising queries) and its criterion: the losses
                and the matching. The caller asks for them explicitly
                (detection and instance segmentation in training, via
                ``UniPerceiverV2.encode_image(..., with_proposal_loss=True)``);
                nothing is inferred from the samples, so a classification
                or captioning batch never gets proposal losses (Appendix A)
                whatever its samples carry. Needs ``gt_instances.bboxes`` in
                every sample (a ``ValueError`` names the one without).

        Returns:
            ImageEncoderOutput: see its docstring; ``losses`` is empty and
            ``matched_indices`` None without the loss.
        """
        if with_loss:
            check_loss_targets(data_samples)
        self._check_meta(inputs, data_samples)
        with self._masking_padding(data_samples):
            feats = self.extract_feat(inputs)
            outputs = self.proposal_network(
                feats[1:], feats[0], data_samples, for_loss=with_loss)
        valid_mask_shapes = [(math.ceil(s.img_shape[0] / 4),
                              math.ceil(s.img_shape[1] / 4))
                             for s in data_samples]
        tokens, regional, _ = self.fusion(outputs.query, outputs.final,
                                          valid_mask_shapes)
        global_map = feats[-2]
        global_tokens, global_mask = self.global_tokens(
            global_map,
            self.padding_mask(data_samples, global_map.shape[-2:],
                              global_map.device))
        losses, matched = {}, None
        if with_loss:
            losses, matched = self.criterion(outputs, regional, data_samples)
        return ImageEncoderOutput(
            regional_tokens=tokens,
            regional_boxes=regional.boxes,
            regional_masks=regional.masks,
            regional_objectness=regional.objectness,
            global_tokens=global_tokens,
            global_padding_mask=global_mask,
            losses=losses,
            matched_indices=matched)

    def _masking_padding(self, data_samples: SampleList):
        """Context in which the padding of these samples' images stays
        out of the convolutional features (a no-op with
        ``mask_padding=False``)."""
        if self._padding_masker is None:
            return nullcontext()
        return self._padding_masker.images(
            [s.img_shape[:2] for s in data_samples],
            data_samples[0].batch_input_shape)

    @staticmethod
    def padding_mask(data_samples: SampleList, size: Sequence[int],
                     device: torch.device) -> Optional[Tensor]:
        """The batch's padding on a feature grid
        (:func:`~mmupv2.models.layers.padding_masks`).

        Args:
            data_samples (list[DetDataSample]): with ``img_shape`` and
                ``batch_input_shape``.
            size (Sequence[int]): (h, w) of the grid.
            device (torch.device): device of the mask.

        Returns:
            Tensor or None: (B, h, w) bool, True = padding; None if no
            image is padded.
        """
        batch_shape = tuple(data_samples[0].batch_input_shape)
        shapes = [tuple(s.img_shape[:2]) for s in data_samples]
        if all(shape == batch_shape for shape in shapes):
            return None
        return padding_masks(shapes, batch_shape, size, device)

    @staticmethod
    def _check_meta(inputs: Tensor, data_samples: SampleList) -> None:
        """Raise a ValueError naming the sample whose meta information
        does not fit ``inputs``."""
        if len(data_samples) != len(inputs):
            raise ValueError(f'{len(inputs)} images but {len(data_samples)} '
                             'data samples')
        batch_shape = tuple(inputs.shape[-2:])
        for i, sample in enumerate(data_samples):
            for key in ('img_shape', 'batch_input_shape'):
                if key not in sample.metainfo:
                    raise ValueError(
                        f'data sample {i} has no {key!r} meta information '
                        "(mmdet's DetDataPreprocessor sets "
                        'batch_input_shape)')
            if tuple(sample.batch_input_shape) != batch_shape:
                raise ValueError(
                    f'data sample {i}: batch_input_shape '
                    f'{tuple(sample.batch_input_shape)} differs from the '
                    f'inputs {batch_shape}')
            img_h, img_w = sample.img_shape[:2]
            if img_h > batch_shape[0] or img_w > batch_shape[1]:
                raise ValueError(
                    f'data sample {i}: img_shape {(img_h, img_w)} exceeds '
                    f'the inputs {batch_shape}')
