# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch
from mmengine.structures import InstanceData

from mmupv2.models.region_proposal import BinaryMaskDINO, MaskFeatureBranch
from mmupv2.structures import UPv2DataSample

D = 32
BATCH_SHAPE = (64, 96)


def _network(**kwargs):
    torch.manual_seed(0)
    net = BinaryMaskDINO(
        embed_dims=D, num_queries=10, num_encoder_layers=1,
        num_decoder_layers=2, num_heads=4, feedforward_channels=64,
        num_groups=8, dn_cfg=dict(group_cfg=dict(num_dn_queries=6)),
        **kwargs)
    net.init_weights()
    return net


def _inputs(img_shapes, num_gts=1):
    h, w = BATCH_SHAPE
    feats = [torch.randn(len(img_shapes), D, h // s, w // s)
             for s in (8, 16, 32, 64)]
    pixel = torch.randn(len(img_shapes), D, h // 4, w // 4)
    samples = []
    for img_shape in img_shapes:
        sample = UPv2DataSample(
            metainfo=dict(img_shape=img_shape, batch_input_shape=BATCH_SHAPE))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 6., 30., 40.]]).repeat(num_gts, 1),
            labels=torch.zeros(num_gts, dtype=torch.long))
        samples.append(sample)
    return feats, pixel, samples


def test_training_outputs():
    net = _network().train()
    out = net(*_inputs([BATCH_SHAPE, (50, 70)]), for_loss=True)
    assert out.query.shape == (2, 10, D)
    assert len(out.decoder) == 2 and len(out.denoising) == 2
    # 6 // 1 = 6 groups of one positive and one negative query
    assert out.dn_meta == dict(num_denoising_queries=12,
                               num_denoising_groups=6)
    for preds, k in [(out.encoder, 10), (out.final, 10),
                     (out.denoising[0], 12)]:
        assert preds.objectness.shape == (2, k)
        assert preds.boxes.shape == (2, k, 4)
        assert preds.masks.shape == (2, k, 16, 24)
        assert bool(((preds.boxes >= 0) & (preds.boxes <= 1)).all())


def test_inference_predicts_the_last_layer_only():
    net = _network().eval()
    with torch.no_grad():
        out = net(*_inputs([BATCH_SHAPE]))
    assert len(out.decoder) == 1
    assert out.encoder is None and out.denoising is None
    assert out.final.masks.shape == (1, 10, 16, 24)


def test_padding_is_never_selected(monkeypatch):
    """Padded encoder tokens given the highest objectness of all are still
    never selected as queries (while valid tokens remain)."""
    net = _network().eval()
    _, _, samples = _inputs([(32, 32)])  # a quarter of the 64 x 96 batch
    feats, pixel, _ = _inputs([BATCH_SHAPE])
    padded = {}
    proposals = net.gen_encoder_output_proposals

    def record_padding(memory, memory_mask, spatial_shapes):
        padded['mask'] = memory_mask
        return proposals(memory, memory_mask, spatial_shapes)

    def objectness_to_padding(module, args, output):
        mask = padded['mask']
        if output.shape[:2] == mask.shape:  # the encoder tokens
            output = output.masked_fill(mask[..., None], 1e4)
        return output

    monkeypatch.setattr(net, 'gen_encoder_output_proposals', record_padding)
    net.cls_branch.register_forward_hook(objectness_to_padding)
    with torch.no_grad():
        out = net(feats, pixel, samples, for_loss=True)
    mask = padded['mask']
    assert int((~mask).sum()) > net.num_queries > 0 and bool(mask.any())
    # none of the N selected tokens is a padded one (objectness 1e4)
    assert bool((out.encoder.objectness < 1e3).all())
    assert bool(torch.isfinite(out.encoder.boxes).all())
    assert bool((out.encoder.boxes[..., :2] < 1).all())


def test_no_ground_truth_keeps_denoising_embedding_in_graph():
    net = _network().train()
    out = net(*_inputs([BATCH_SHAPE], num_gts=0), for_loss=True)
    assert out.dn_meta['num_denoising_queries'] == 0
    out.final.objectness.sum().backward()
    grad = net.dn_query_generator.label_embedding.weight.grad
    assert grad is not None and bool((grad == 0).all())


def test_too_few_tokens_is_named():
    net = _network()
    net.num_queries = 1000
    with pytest.raises(ValueError, match='num_queries=1000'):
        net(*_inputs([BATCH_SHAPE]))


def test_mask_branch_shape():
    branch = MaskFeatureBranch(embed_dims=D, mask_dims=16, num_groups=8)
    out = branch(torch.randn(2, D, 16, 24), torch.randn(2, D, 8, 12))
    assert out.shape == (2, 16, 16, 24)
    with pytest.raises(ValueError, match='num_groups'):
        MaskFeatureBranch(embed_dims=30, num_groups=8)



def test_parameters_finite_without_init_weights(monkeypatch):
    """A network used without ``init_weights`` (a random-init inferencer,
    as mmengine's BaseInferencer builds it) has no parameter left
    uninitialised: every fresh ``torch.empty`` is NaN here, and each
    parameter must have been drawn or set in the constructor."""
    empty = torch.empty

    def nan_empty(*args, **kwargs):
        out = empty(*args, **kwargs)
        return out.fill_(float('nan')) if out.is_floating_point() else out

    monkeypatch.setattr(torch, 'empty', nan_empty)
    net = BinaryMaskDINO(
        embed_dims=32, num_queries=4, num_encoder_layers=1,
        num_decoder_layers=1, feedforward_channels=64, num_groups=8)
    for name, param in net.named_parameters():
        assert torch.isfinite(param).all(), name
