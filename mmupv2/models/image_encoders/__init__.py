# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .class_agnostic_proposer import ClassAgnosticProposer
from .clip_resnet import CLIPModifiedResNet
from .global_tokens import GlobalTokens
from .outputs import ImageEncoderOutput
from .proposal_fusion import ProposalFusion
from .region_proposal_encoder import RegionProposalImageEncoder

__all__ = [
    'ClassAgnosticProposer', 'CLIPModifiedResNet', 'GlobalTokens',
    'ImageEncoderOutput', 'ProposalFusion', 'RegionProposalImageEncoder'
]
