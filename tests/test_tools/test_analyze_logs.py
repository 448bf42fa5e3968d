# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``tools/analysis_tools/analyze_logs.py``: per-task curves of an
mmengine json log (the multi-task loop's keys)."""
import json

import matplotlib
import matplotlib.image as mpimg
import pytest

from .tool_helpers import load_tool, run_tool

matplotlib.use('Agg')

#: three training lines and a validation line, as MultiTaskLoop logs them
LINES = [
    {'lr': 1e-4, 'loss': 3.0, 'classification.loss_cls': 2.0,
     'loss_classification': 2.0, 'detection.loss_cls': 1.5,
     'detection.proposal.loss_bbox': 0.9, 'loss_detection': 2.4,
     'time': 0.5, 'iter': 10, 'task': 'detection', 'step': 10},
    {'lr': 1e-4, 'loss': 2.5, 'classification.loss_cls': 1.8,
     'loss_classification': 1.8, 'detection.loss_cls': 1.2,
     'detection.proposal.loss_bbox': 0.7, 'loss_detection': 1.9,
     'time': 0.4, 'iter': 20, 'task': 'classification', 'step': 20},
    {'lr': 1e-4, 'loss': 2.0, 'classification.loss_cls': 1.5,
     'loss_classification': 1.5, 'detection.loss_cls': 1.0,
     'detection.proposal.loss_bbox': 0.5, 'loss_detection': 1.5,
     'time': 0.2, 'iter': 30, 'task': 'detection', 'step': 30},
    {'classification/classification/top1': 50.0,
     'detection/detection/bbox_mAP': 0.2, 'time': 0.1, 'step': 30},
]


@pytest.fixture
def log(tmp_path):
    path = tmp_path / 'scalars.json'
    path.write_text(''.join(json.dumps(line) + '\n' for line in LINES))
    return str(path)


def _curves(tool, log, **kwargs):
    fig = tool.plot_curve([tool.load_json_log(log)], [log], **kwargs)
    lines = fig.axes[0].lines
    return {line.get_label(): (list(line.get_xdata()),
                               list(line.get_ydata())) for line in lines
            }, len(lines)


def test_one_curve_per_key(log):
    tool = load_tool('analysis_tools/analyze_logs.py')
    curves, num = _curves(tool, log,
                          keys=['loss', 'classification.loss_cls'])
    assert num == 2
    assert curves['loss'] == ([10, 20, 30], [3.0, 2.5, 2.0])
    assert curves['classification.loss_cls'] == ([10, 20, 30],
                                                 [2.0, 1.8, 1.5])
    # a key's last part names it in every task
    curves, num = _curves(tool, log, keys=['loss_cls'])
    assert sorted(curves) == ['classification.loss_cls',
                              'detection.loss_cls']
    # a metric: one point per validation
    curves, _ = _curves(tool, log, keys=['top1'])
    assert curves == {'classification/classification/top1': ([30], [50.0])}
    # the validation line's own time is apart from the training time
    scalars = tool.load_json_log(log)
    assert scalars['val/time'] == ([30], [0.1])
    assert scalars['time'] == ([10, 20, 30], [0.5, 0.4, 0.2])


def test_entry_selects_its_keys(log):
    tool = load_tool('analysis_tools/analyze_logs.py')
    curves, num = _curves(tool, log, entry='detection')
    assert sorted(curves) == ['detection.loss_cls',
                              'detection.proposal.loss_bbox',
                              'loss_detection']
    curves, num = _curves(tool, log, entry='detection',
                          keys=['loss_cls', 'bbox_mAP'])
    assert list(curves) == ['detection.loss_cls',
                            'detection/detection/bbox_mAP']
    with pytest.raises(KeyError, match='no such key of --entry detection.*'
                       'detection.loss_cls'):
        tool.select_keys(list(tool.load_json_log(log)), ['top1'],
                         'detection')
    with pytest.raises(KeyError, match='--entry mlm'):
        tool.select_keys(list(tool.load_json_log(log)), None, 'mlm')


def test_plot_curve_writes_png_and_train_time(log, tmp_path):
    out = tmp_path / 'curves.png'
    proc = run_tool('analysis_tools/analyze_logs.py', 'plot_curve', log,
                    '--keys', 'loss', 'detection.loss_cls', '--out', out)
    assert f'save curve to: {out}' in proc.stdout
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    image = mpimg.imread(str(out))
    assert image.shape[0] > 100 and image.shape[1] > 100

    proc = run_tool('analysis_tools/analyze_logs.py', 'cal_train_time', log)
    # the first logged time (start-up) is left out: (0.4 + 0.2) / 2
    assert 'average iter time: 0.3000 s/iter' in proc.stdout
