# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/analysis_tools/browse_dataset.py``: each entry's training
samples drawn as the pipeline gives them (boxes where the augmented
annotation says, labels, texts)."""
import numpy as np
from mmengine.config import Config

from .tool_helpers import TINY_CONFIG, load_tool, run_tool


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(-1)


def _edge_points(box, height, width, offset=0):
    """(y, x) pixel positions along the four edges of a box, moved
    ``offset`` pixels outwards, corners left out."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    x1, y1, x2, y2 = x1 - offset, y1 - offset, x2 + offset, y2 + offset
    xs, ys = np.arange(x1 + 3, x2 - 3), np.arange(y1 + 3, y2 - 3)
    points = [(y1, x) for x in xs] + [(y2, x) for x in xs] + \
        [(y, x1) for y in ys] + [(y, x2) for y in ys]
    return [(y, x) for y, x in points if 0 <= y < height and 0 <= x < width]


def test_boxes_drawn_where_the_annotation_says(shapes_cwd):
    tool = load_tool('analysis_tools/browse_dataset.py')
    cfg = Config.fromfile(TINY_CONFIG)
    drawn = list(tool.browse(cfg, ['detection', 'instance_segmentation'],
                             max_images=3))
    assert [d.entry for d in drawn] == ['detection'] * 3 + [
        'instance_segmentation'] * 3
    checked = 0
    for d in drawn:
        assert d.drawing.shape == d.image.shape
        boxes = d.data_sample.gt_instances.bboxes  # after the flip
        boxes = getattr(boxes, 'tensor', boxes)
        height, width = d.image.shape[:2]
        diff = _diff(d.drawing, d.image)
        for box in boxes:
            edge = _edge_points(box, height, width)
            if len(edge) < 8:  # a box too small to tell its edges
                continue
            changed = np.mean([diff[y, x] > 40 for y, x in edge])
            assert changed > 0.8, (d.name, box, changed)
            checked += 1
        # far outside every box nothing is drawn
        outside = np.ones((height, width), bool)
        for x1, y1, x2, y2 in boxes.round().int().tolist():
            outside[max(y1 - 6, 0):y2 + 7, max(x1 - 6, 0):x2 + 7] = False
        assert outside.any()
        assert np.median(diff[outside]) < 10
    assert checked >= 4


def test_text_tasks_are_written(shapes_cwd):
    tool = load_tool('analysis_tools/browse_dataset.py')
    cfg = Config.fromfile(TINY_CONFIG)
    for d in tool.browse(cfg, ['classification', 'captioning', 'mlm'],
                         max_images=1):
        lines = tool.annotation_lines(
            d.data_sample, ('circle', 'square', 'triangle', 'diamond',
                            'star', 'cross', 'ring'))
        assert lines, d.entry
        if d.image is None:  # mlm: the text on a blank canvas
            assert d.entry == 'mlm' and d.drawing.std() > 1
        else:  # the text block in the top-left corner
            assert _diff(d.drawing[:12, :40], d.image[:12, :40]).mean() > 20
    label = tool.annotation_lines(
        next(tool.browse(cfg, ['classification'], 1)).data_sample, ['c'] * 7)
    assert label[0].startswith('label: c (')


def test_browse_dataset_cli_writes_each_entry(shapes_cwd):
    out = shapes_cwd / 'browse'
    proc = run_tool('analysis_tools/browse_dataset.py', TINY_CONFIG,
                    '--entry', 'detection', 'mlm', '--max-images', '2',
                    '--output-dir', out, '--not-show', cwd=shapes_cwd)
    assert 'detection (detection): 2 samples drawn' in proc.stdout
    assert 'mlm (mlm): 2 samples drawn' in proc.stdout
    assert sorted(p.name for p in (out / 'mlm').iterdir()) == [
        '00000.png', '00001.png'
    ]
    assert len(list((out / 'detection').glob('0000[01]_*.png'))) == 2
