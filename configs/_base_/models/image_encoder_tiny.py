# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# A tiny f_image for the shapes benchmark, tests and smoke runs (not in the
# paper): ResNet-18 with a quarter of its widths, d = 64, two encoder and
# two decoder layers, 30 queries, 20 regional tokens, 4 global pools,
# 28 x 28 mask points. Everything else is the ResNet-50 setting.
_base_ = ['./image_encoder_r50.py']

image_encoder = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ResNet',
        depth=18,
        stem_channels=16,
        base_channels=16,
        # three 3x3 convs instead of one 7x7: from scratch, this backbone
        # alone reaches 39% instead of 16% shapes top-1 in 700 iterations
        # (tools/analysis_tools/backbone_probe.py, docs/benchmark.md)
        deep_stem=True,
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    proposal_network=dict(
        embed_dims=64,
        num_queries=30,
        num_encoder_layers=2,
        num_decoder_layers=2,
        feedforward_channels=256,
        dn_cfg=dict(group_cfg=dict(num_dn_queries=30))),
    criterion=dict(num_points=28 * 28),
    num_regional_tokens=20,
    num_global_pools=4)
