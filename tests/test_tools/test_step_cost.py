# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/analysis_tools/step_cost.py`` and its counter
(``mmupv2/utils/phase_counter.py``): hand counts on a small layer stack,
the fit it extrapolates with, and the tool on the tiny config, whose
extrapolated FLOPs must equal a direct measurement."""
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger

from mmupv2.utils.phase_counter import PhaseCounter

from .tool_helpers import TINY_CONFIG, load_tool


def test_flops_per_phase_and_direction_match_a_hand_count():
    """Linear(8->16) in phase 'a', GELU + Linear(16->4) in 'b', batch 3,
    the input without gradient; then attention in 'c'."""
    torch.manual_seed(0)
    first, second = nn.Linear(8, 16), nn.Linear(16, 4)
    x = torch.randn(3, 8)
    counter = PhaseCounter()
    with counter:
        with counter.phase('a'):
            h = first(x)
        with counter.phase('b'):
            y = second(F.gelu(h))
        loss = y.square().sum()  # element-wise: 'other', 0 FLOPs
        loss.backward()
    flops = counter.by_phase()
    assert flops['a'] == dict(forward=2 * 3 * 8 * 16,
                              backward=2 * 3 * 8 * 16)  # weight grad only
    assert flops['b'] == dict(forward=2 * 3 * 16 * 4,
                              backward=2 * (2 * 3 * 16 * 4))  # input, weight
    assert flops.get('other', dict(forward=0, backward=0)) == dict(
        forward=0, backward=0)
    assert counter.total() == 2 * 3 * 8 * 16 * 2 + 2 * 3 * 16 * 4 * 3

    q = torch.randn(2, 4, 5, 8, requires_grad=True)
    k, v = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 6)
    counter = PhaseCounter()
    with counter:
        with counter.phase('c'):
            out = F.scaled_dot_product_attention(q, k, v)
        out.sum().backward()
    # q k^T (B H L S E) + weights x v (B H L S Ev), 2 FLOPs a multiply-add
    assert counter.by_phase()['c']['forward'] == (2 * 4 * 5 * 7 * 8 * 2 +
                                                  2 * 4 * 5 * 7 * 6 * 2)
    assert counter.by_phase()['c']['backward'] > 0


@pytest.mark.parametrize('reentrant', [False, True])
def test_checkpointed_phase_counts_its_recomputation(reentrant):
    """Linear(8->16) checkpointed in phase 'a' (as mmpretrain's Swin blocks
    with ``with_cp``: the next op of the phase takes its output), batch 3:
    the backward of the recomputed graph is 'a''s too, nothing under
    'other'. Reentrant: the forward runs again in the backward (3 x one
    product in all); non-reentrant stops the recomputation once the saved
    tensors are back (here Linear's inputs: the product is not rerun)."""
    layer = nn.Linear(8, 16)
    x = torch.randn(3, 8, requires_grad=True)
    counter = PhaseCounter()
    with counter:
        with counter.phase('a'):
            h = torch.utils.checkpoint.checkpoint(
                layer, x, use_reentrant=reentrant) * 2
        h.square().sum().backward()
    one = 2 * 3 * 8 * 16
    assert counter.by_phase()['a'] == dict(
        forward=one, backward=(3 if reentrant else 2) * one)
    assert counter.by_phase().get('other', {}).get('backward', 0) == 0


def test_inner_phase_can_keep_the_outer_one():
    counter = PhaseCounter()
    layer = nn.Linear(4, 4)
    with counter:
        with counter.phase('targets'):
            with counter.phase('input text', keep_outer=('targets', )):
                layer(torch.randn(2, 4))
        with counter.phase('input text', keep_outer=('targets', )):
            layer(torch.randn(2, 4))
    assert counter.by_phase()['targets']['forward'] == 2 * 2 * 4 * 4
    assert counter.by_phase()['input text']['forward'] == 2 * 2 * 4 * 4


def test_peak_bytes_of_the_tensors_alive_at_once():
    counter = PhaseCounter()
    with counter:
        a = torch.ones(1000)  # 4,000 bytes
        b = a * 2  # 8,000 alive
        del b
        c = [a + 1, a + 2]  # 12,000 alive: the peak
        del c
        d = a[:10]  # a view: no new storage
    assert counter.peak_bytes == 12000
    assert counter.live_bytes == 4000
    assert d.untyped_storage().data_ptr() == a.untyped_storage().data_ptr()


def test_bilinear_fit_is_exact_on_a_bilinear_function():
    tool = load_tool('analysis_tools/step_cost.py')

    def f(x, y):
        return 3 + 2 * x + 5 * y + 7 * x * y

    points = {(x, y): f(x, y) for x in (2, 4) for y in (16, 32)}
    assert tool.bilinear(points, 28, 1000) == pytest.approx(f(28, 1000))
    # one axis measured at its value: only the other is fitted
    points = {(x, 7): f(x, 7) for x in (2, 4)}
    assert tool.bilinear(points, 28, 7) == pytest.approx(f(28, 7))


def _cost(tool, tmp_path, name, *args):
    out = tmp_path / f'{name}.json'
    logger = MMLogger.get_current_instance()
    level = logger.level
    assert tool.main([TINY_CONFIG, '--json', str(out), *args]) == 0
    # quiet while it measures, but the caller's warnings still reach it
    assert logger.level == level
    return {r['task']: r for r in json.loads(out.read_text())['rows']}


def test_tiny_config_extrapolated_equals_measured(tmp_path, shapes_cwd,
                                                   shapes_root):
    """Classification of the tiny config (batch 16, 7 classes) fitted from
    steps of 2 and 4 images equals a step of 16 measured directly, part by
    part; captioning's vocabulary (the whole tokenizer) fitted from 64 and
    128 targets; the section is written."""
    from transformers import AutoTokenizer
    vocabulary = len(AutoTokenizer.from_pretrained(f'{shapes_root}/tokenizer'))
    assert vocabulary > 128
    tool = load_tool('analysis_tools/step_cost.py')
    md = tmp_path / 'benchmark.md'
    fitted = _cost(tool, tmp_path, 'fitted', '--task', 'classification',
                   'captioning', '--write', str(md), '--check-batch', '8')
    direct = _cost(tool, tmp_path, 'direct', '--task', 'classification',
                   '--measure-batch', '16')
    assert fitted['classification']['extrapolated']
    assert not direct['classification']['extrapolated']
    got = tool.evaluate(fitted['classification'])['flops']
    want = tool.evaluate(direct['classification'])['flops']
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key
    # memory is a model: the peak of the 16-image step and of the held-out
    # 8-image one (not in the fit) within 15 %
    row = fitted['classification']
    predicted = tool.evaluate(row)['activation_bytes']
    measured = direct['classification']['points'][0]['peak_bytes']
    print('memory model, 16 images:', predicted / measured - 1)
    assert predicted == pytest.approx(measured, rel=0.15)
    check = row['check']
    assert check['x'] == 8 and 'held-out step' in tool.memory_check(row)
    loss = tool.bilinear({(p['x'], p['y']): p['flops']['loss/forward']
                          for p in row['points']}, 8, check['y'])
    predicted = tool.activation_bytes(row, 8, check['y'], check['y'],
                                      {('loss', 'forward'): loss})
    print('memory model, 8 images:', predicted / check['peak_bytes'] - 1)
    assert predicted == pytest.approx(check['peak_bytes'], rel=0.15)
    # every part of a classification step is there, targets included
    for part in ('image encoder', 'targets', 'decoder'):
        assert want[(part, 'forward')] > 0 and want[(part, 'backward')] > 0
    cap = fitted['captioning']
    assert cap['targets'] == vocabulary and cap['extrapolated']
    one, sharded = tool.evaluate(cap, 1), tool.evaluate(cap, 16)
    # 16 GPUs: each encodes its shard of the vocabulary, the rest is equal
    assert sharded['local'] == -(-vocabulary // 16)
    # (up to the MoE gates' cost per call, a few K FLOPs)
    assert sharded['flops'][('targets', 'forward')] == pytest.approx(
        one['flops'][('targets', 'forward')] * sharded['local'] /
        vocabulary, rel=1e-3)
    for key in (('image encoder', 'forward'), ('loss', 'forward')):
        assert sharded['flops'][key] == pytest.approx(one['flops'][key])
    # checkpointing adds one forward of the targets to the backward
    ckpt = tool.evaluate(cap, 1, checkpoint=True)
    assert ckpt['flops'][('targets', 'recompute')] == pytest.approx(
        one['flops'][('targets', 'forward')])
    assert tool.evaluate(cap, 1, checkpoint='auto', chunk=vocabulary)[
        'checkpointed'] is False
    text = md.read_text()
    assert '## Paper-scale step cost: upv2_tiny_shapes' in text
    assert '| classification |' in text and '| captioning |' in text
    assert 'target share, replicated' in text


def test_target_share():
    tool = load_tool('analysis_tools/step_cost.py')
    step = dict(flops={('targets', 'forward'): 60, ('targets', 'backward'): 20,
                       ('image encoder', 'forward'): 20})
    assert tool.target_share(step) == pytest.approx(0.8)
    assert tool.local_targets(50265, 16) == 3142
    assert tool.local_targets(7, 16) == 7  # fewer targets than GPUs
    assert tool.config_gpus('upv2_swin-l_64xb-mt-200k_table8.py') == 64
    assert tool.config_gpus('upv2_tiny_shapes.py') == 1


def test_memory_model_adds_samples_targets_and_similarities():
    """Peaks of a + b x + c y plus noise that would make a bilinear fit's
    cross term negative: the fit keeps the slopes, never goes below the
    fixed part, and adds three fp32 copies of the similarity matrix and
    the gathered embeddings at the evaluated size."""
    tool = load_tool('analysis_tools/step_cost.py')
    width = 8
    a, b, c = 1e9, 2e8, 1e6

    def point(x, y, noise=0.0):
        loss = 2 * x * y * width  # one dot product per similarity
        return dict(x=x, y=y, flops={'loss/forward': loss},
                    peak_bytes=a + b * x + c * y + loss / (2 * width) * 12 +
                    noise)

    row = dict(width=width, points=[point(2, 64), point(2, 128, 5e6),
                                    point(4, 64, 5e6), point(4, 128)])
    fa, fb, fc = tool.additive_fit(row)
    assert (fb, fc) == (pytest.approx(b), pytest.approx(c))
    assert fa == pytest.approx(a + 2.5e6)  # the noise, averaged
    loss = {('loss', 'forward'): 2 * 256 * 50265 * width}
    got = tool.activation_bytes(row, 256, 1571, 50265, loss)
    want = (fa + b * 256 + c * 1571 + (50265 - 1571) * width * 8 +
            256 * 50265 * 12)
    assert got == pytest.approx(want)
    # a slope that the measurements make negative is clipped at 0
    row['points'][1]['peak_bytes'] = row['points'][0]['peak_bytes'] - 1e8
    row['points'][3]['peak_bytes'] = row['points'][2]['peak_bytes'] - 1e8
    assert tool.additive_fit(row)[2] == 0
