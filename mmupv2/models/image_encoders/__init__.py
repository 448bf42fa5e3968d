# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .global_tokens import GlobalTokens
from .outputs import ImageEncoderOutput, check_loss_targets
from .proposal_fusion import ProposalFusion
from .region_proposal_encoder import RegionProposalImageEncoder

__all__ = [
    'GlobalTokens', 'ImageEncoderOutput', 'ProposalFusion',
    'RegionProposalImageEncoder', 'check_loss_targets'
]
