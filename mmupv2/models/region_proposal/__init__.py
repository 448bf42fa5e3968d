# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .criterion import BinaryMaskDINOCriterion, MatchedIndices
from .denoising import NOISED_LABEL, OBJECT_LABEL, BinaryCdnQueryGenerator
from .mask_branch import MaskFeatureBranch
from .mask_dino import BinaryMaskDINO
from .outputs import ProposalNetworkOutput, ProposalPredictions

__all__ = [
    'BinaryCdnQueryGenerator', 'BinaryMaskDINO', 'BinaryMaskDINOCriterion',
    'MaskFeatureBranch', 'MatchedIndices', 'NOISED_LABEL', 'OBJECT_LABEL',
    'ProposalNetworkOutput', 'ProposalPredictions'
]
