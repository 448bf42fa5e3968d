# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/analysis_tools/get_flops.py``: the counter against hand counts,
and the per-part / per-task tables of the tiny config."""
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tool_helpers import TINY_CONFIG, load_tool, run_tool


class _Attention(nn.Module):

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_count_flops_matches_hand_count():
    tool = load_tool('analysis_tools/get_flops.py')
    toy = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 6 * 6, 10))
    count = tool.count_flops(toy, (torch.randn(2, 3, 6, 6), ))
    conv = 2 * 8 * 6 * 6 * (3 * 3 * 3)  # output values x kernel volume
    linear = 2 * (8 * 6 * 6) * 10  # batch x in x out
    assert count.by_module['0'] == conv == 15552
    assert count.by_module['3'] == linear == 5760
    assert count.total == conv + linear

    # attention: q k^T (B H L S E) + weights x v (B H L S Ev)
    q, k, v = (torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8),
               torch.randn(2, 4, 7, 6))
    count = tool.count_flops(_Attention(), (q, k, v))
    assert count.total == 2 * 4 * 5 * 7 * 8 + 2 * 4 * 5 * 7 * 6
    assert not count.skipped


def _row(text: str, name: str):
    line = next(li for li in text.splitlines()
                if li.startswith(f'| {name} |'))
    return [c.strip() for c in line.strip().strip('|').split('|')]


def _value(cell: str) -> float:
    scale = dict(K=1e3, M=1e6, G=1e9, T=1e12)
    match = re.fullmatch(r'([\d.]+)([KMGT]?)', cell)
    assert match, cell
    return float(match.group(1)) * scale.get(match.group(2), 1)


def test_tiny_config_tables(shapes_cwd):
    proc = run_tool('analysis_tools/get_flops.py', TINY_CONFIG, '--shape',
                    '64', '--task', 'classification', 'mlm',
                    cwd=shapes_cwd)
    out = proc.stdout
    for part in ('image encoder', 'text encoder', 'decoder', 'total'):
        assert _value(_row(out, part)[1]) > 0, part
    cls = _row(out, 'classification')
    assert cls[1] == '64x64'
    image_enc, text_enc, decoder, other, total = map(_value, cls[2:7])
    assert image_enc > 0 and decoder > 0 and text_enc == 0
    # the class names are cached: the text encoder does not run
    assert abs(image_enc + decoder + other - total) <= 0.01 * total
    mlm = _row(out, 'mlm')
    assert mlm[1].endswith('tokens') and _value(mlm[2]) == 0
    assert _value(mlm[3]) > 0 and _value(mlm[4]) > 0
    names = _row(out, 'targets: class names of classification (7)')
    assert _value(names[3]) > 0 and _value(names[4]) > 0
    assert 'targets: vocabulary (' in out
    assert 'grid_sample' in out
