# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.image_encoders import ImageEncoderOutput
from mmupv2.registry import MODELS

#: The last backbone stage of each paper setting: gradients must reach it.
LAST_STAGE = {'r50': 'backbone.layer4.', 'swin-b': 'backbone.stages.3.'}


@pytest.fixture(scope='module', params=['r50', 'swin-b'])
def paper_encoder(request, build_encoder):
    return request.param, build_encoder(request.param)


def _check_contract(out: ImageEncoderOutput, batch, num_regions, dims,
                    batch_shape, num_pools=10):
    h, w = batch_shape
    assert out.regional_tokens.shape == (batch, num_regions, dims)
    assert out.regional_boxes.shape == (batch, num_regions, 4)
    assert out.regional_masks.shape == (batch, num_regions, h // 4, w // 4)
    assert out.regional_objectness.shape == (batch, num_regions)
    num_global = num_pools + (h // 32) * (w // 32)
    assert out.global_tokens.shape == (batch, num_global, dims)
    assert out.global_padding_mask.shape == (batch, num_global)
    assert out.global_padding_mask.dtype == torch.bool
    assert not out.global_padding_mask[:, :num_pools].any()
    boxes = out.regional_boxes
    assert bool(((boxes >= 0) & (boxes <= 1)).all())
    # sorted by objectness
    assert bool((out.regional_objectness.diff(dim=1) <= 0).all())


def test_paper_setting_loss_with_one_instance(paper_encoder, make_batch):
    name, encoder = paper_encoder
    encoder.train()
    inputs, samples = make_batch([(256, 256)], [[[30, 40, 130, 200]]])
    out = encoder(inputs, samples, with_loss=True)
    _check_contract(out, 1, 200, 256, (256, 256))
    assert out.regional_tokens.requires_grad
    # encoder output, 6 decoder layers and 6 denoising layers, 5 terms
    # each, and the regional objectness
    assert len(out.losses) == 13 * 5 + 1
    for key, value in out.losses.items():
        assert torch.isfinite(value) and value.item() > 0, key
    (token_idx, gt_idx), = out.matched_indices
    assert gt_idx.tolist() == [0] and 0 <= int(token_idx) < 200

    encoder.zero_grad()
    sum(out.losses.values()).backward()
    grads = [
        p.grad.abs().sum() for n, p in encoder.named_parameters()
        if n.startswith(LAST_STAGE[name]) and p.grad is not None
    ]
    assert grads and sum(grads) > 0


def test_paper_setting_empty_ground_truth(paper_encoder, make_batch):
    _, encoder = paper_encoder
    encoder.train()
    inputs, samples = make_batch([(256, 256)], [[]])
    with torch.no_grad():
        out = encoder(inputs, samples, with_loss=True)
    assert out.losses and all(
        torch.isfinite(v) for v in out.losses.values())
    assert out.matched_indices[0][0].numel() == 0


def test_eval_has_no_losses(tiny_encoder, make_batch):
    tiny_encoder.eval()
    inputs, samples = make_batch([(128, 96)], [[[10, 10, 50, 60]]])
    with torch.no_grad():
        out = tiny_encoder(inputs, samples)
    _check_contract(out, 1, 20, 64, (128, 96), num_pools=4)
    assert out.losses == {} and out.matched_indices is None


def test_mixed_image_sizes(tiny_encoder, make_batch):
    tiny_encoder.train()
    inputs, samples = make_batch(
        [(96, 128), (64, 80)], [[[10, 10, 50, 60]], [[5, 5, 60, 40]]])
    out = tiny_encoder(inputs, samples, with_loss=True)
    _check_contract(out, 2, 20, 64, (96, 128), num_pools=4)
    padding = out.global_padding_mask[:, 4:].reshape(2, 3, 4)
    assert not padding[0].any()
    # 64 x 80 pixels cover 2 x 3 cells of the stride-32 grid
    assert padding[1].logical_not().sum() == 6
    assert not padding[1, :2, :3].any()
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert [gt.tolist() for _, gt in out.matched_indices] == [[0], [0]]


@pytest.mark.parametrize('setting', ['tiny', 'lite0'])
@pytest.mark.parametrize('mask_padding', [True, False])
def test_image_alone_equals_image_in_a_mixed_size_batch(
        setting, mask_padding, build_encoder, make_batch):
    """An image gives the same tokens, proposals (boxes normalised to its
    own size) and masks alone and padded in a batch with a larger image --
    and does not without the padding masks (so the test can tell)."""
    encoder = build_encoder(setting, mask_padding=mask_padding).eval()
    inputs, samples = make_batch([(64, 96), (128, 128)],
                                 [[[10, 10, 50, 60]], [[5, 5, 60, 40]]])
    alone_inputs, alone_samples = make_batch([(64, 96)],
                                             [[[10, 10, 50, 60]]])
    assert torch.equal(inputs[0, :, :64, :96], alone_inputs[0])
    with torch.no_grad():
        batched = encoder(inputs, samples)
        alone = encoder(alone_inputs, alone_samples)
    valid = ~batched.global_padding_mask[0]
    pairs = {
        key: (getattr(batched, key)[0], getattr(alone, key)[0])
        for key in ('regional_boxes', 'regional_objectness',
                    'regional_tokens')
    }
    pairs['regional_masks'] = (batched.regional_masks[0, :, :16, :24],
                               alone.regional_masks[0])
    pairs['global_tokens'] = (batched.global_tokens[0][valid],
                              alone.global_tokens[0])
    tol = dict(rtol=1e-4, atol=1e-4)
    if mask_padding:
        for key, (b, a) in pairs.items():
            torch.testing.assert_close(b, a, **tol, msg=key)
    else:
        assert not all(
            torch.allclose(b, a, **tol) for b, a in pairs.values())


def test_loss_only_when_asked(tiny_encoder, make_batch):
    """The caller asks for the proposal losses: a training batch whose
    samples carry boxes gets none by default (e.g. classification samples
    of a detection data set), and asking without boxes names the
    sample."""
    tiny_encoder.train()
    inputs, samples = make_batch([(64, 64)], [[[10, 10, 50, 60]]])
    assert 'bboxes' in samples[0].gt_instances
    out = tiny_encoder(inputs, samples)
    assert out.losses == {} and out.matched_indices is None
    del samples[0].gt_instances.bboxes
    with pytest.raises(ValueError, match='data sample 0 has none'):
        tiny_encoder(inputs, samples, with_loss=True)


def test_bad_meta_information_is_named(tiny_encoder, make_batch):
    inputs, samples = make_batch([(64, 64)], [[]])
    with pytest.raises(ValueError, match='differs from the inputs'):
        tiny_encoder(inputs[..., :32], samples, with_loss=False)
    samples[0].set_metainfo(dict(img_shape=(80, 64)))
    with pytest.raises(ValueError, match='exceeds'):
        tiny_encoder(inputs, samples, with_loss=False)


def test_tiny_setting_overfits_one_shapes_image(shapes_root, encoder_config):
    """Total proposal loss falls by half within 100 steps on one image of
    the shapes benchmark (data set, pipeline and data preprocessor as in
    training)."""
    from mmupv2.datasets import UPv2CocoDataset
    from mmupv2.datasets.shapes import SHAPES
    dataset = UPv2CocoDataset(
        data_root=shapes_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=SHAPES),
        task='instance_segmentation',
        pipeline=[
            dict(type='mmdet.LoadImageFromFile'),
            dict(type='mmdet.LoadAnnotations', with_bbox=True,
                 with_mask=True),
            dict(type='PackUPv2Inputs')
        ])
    preprocessor = MODELS.build(
        dict(type='mmdet.DetDataPreprocessor',
             mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
             bgr_to_rgb=True, pad_mask=True, pad_size_divisor=32))
    item = dataset[0]
    data = preprocessor(
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
        training=True)
    assert len(data['data_samples'][0].gt_instances) >= 1

    torch.manual_seed(0)
    encoder = MODELS.build(encoder_config('tiny'))
    encoder.init_weights()
    encoder.train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3,
                                  weight_decay=1e-4)
    history = []
    for _ in range(100):
        losses = encoder(data['inputs'], data['data_samples'],
                         with_loss=True).losses
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 0.1)
        optimizer.step()
        history.append(loss.item())
        if len(history) >= 5 and _mean(history[-5:]) <= 0.5 * history[0]:
            break
    assert _mean(history[-5:]) <= 0.5 * history[0], history


def _mean(values):
    return sum(values) / len(values)
