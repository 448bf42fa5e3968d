# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/analysis_tools/backbone_probe.py``: trains the config's backbone
with a linear head on the classification data, reports val top-1 by
iteration and writes its docs/benchmark.md section."""
import os
import os.path as osp

import pytest

from mmupv2.datasets.shapes import generate_shapes

from ..scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'backbone_probe.py')
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')


@pytest.fixture
def in_shapes_dir(tmp_path):
    """A working directory whose data/shapes is a tiny benchmark (the
    config's relative data root)."""
    generate_shapes(str(tmp_path / 'data' / 'shapes'), num_train=12,
                    num_val=6, seed=2, img_size=96)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def test_probe_fits_and_writes_section(in_shapes_dir):
    probe = load_script(SCRIPT)
    out = in_shapes_dir / 'benchmark.md'
    out.write_text('# Benchmarks\n\n## Other\n\nkept\n')
    results = probe.main([
        CONFIG, '--iters', '40', '--eval-interval', '20', '--lr', '3e-3',
        '--variant', 'deep_stem=False', '--variant', 'deep_stem=True',
        '--write', str(out)
    ])
    assert list(results) == ['deep_stem=False', 'deep_stem=True']
    for rows in results.values():
        assert [it for it, _, _ in rows] == [20, 40]
        assert all(0 <= acc <= 100 for _, _, acc in rows)
        # 12 images seen ~50 times: the training loss must fall
        assert rows[-1][1] < rows[0][1]
    text = out.read_text()
    assert '## Other\n\nkept' in text  # other sections untouched
    assert f'## {probe.TITLE}' in text
    assert '| backbone | top-1 @20 | top-1 @40 |' in text
    assert '| `deep_stem=True` |' in text


def test_variant_parsing_and_errors(in_shapes_dir):
    probe = load_script(SCRIPT)
    assert probe.parse_variant('deep_stem=True, base_channels=8') == dict(
        deep_stem=True, base_channels=8)
    with pytest.raises(ValueError, match='expected key=value'):
        probe.parse_variant('deep_stem')
    with pytest.raises(ValueError, match="bad value for 'depth'"):
        probe.parse_variant('depth=eighteen')
    with pytest.raises(SystemExit, match='--iters'):
        probe.main([CONFIG, '--iters', '0'])
