# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json
from types import SimpleNamespace

import numpy as np
import torch

from mmupv2.engine.runner.metrics_summary import (
    COLUMNS,
    MetricRow,
    dump_rows,
    format_value,
    loop_dataset_tasks,
    metrics_to_rows,
    rows_to_table,
)

TASKS = {'cls_a': 'classification', 'ret': 'retrieval'}


def test_prefixed_keys_become_rows_in_order():
    metrics = {
        'cls_a/accuracy/top1': 54.16,
        'ret/accuracy/top1': torch.tensor(29.5),
        'ret/single-label/precision': np.float32(17.5),
        'other': 3,
    }
    rows = metrics_to_rows(metrics, TASKS)
    assert rows == [
        MetricRow('classification', 'cls_a', 'accuracy/top1', 54.16),
        MetricRow('retrieval', 'ret', 'accuracy/top1', 29.5),
        MetricRow('retrieval', 'ret', 'single-label/precision', 17.5),
        MetricRow('-', '-', 'other', 3),
    ]
    # tensors / numpy values are plain Python numbers (JSON-able)
    assert type(rows[1].value) is float and type(rows[2].value) is float


def test_unprefixed_keys_of_a_single_dataset():
    """mmengine's plain TestLoop does not prefix; the only data set gets
    the metrics."""
    rows = metrics_to_rows({'accuracy/top1': 50.0}, {'cls_a': 'classif.'})
    assert rows == [MetricRow('classif.', 'cls_a', 'accuracy/top1', 50.0)]


def test_loop_dataset_tasks():
    multi = SimpleNamespace(tasks={'cls_a': 'classification', 'x': None})
    assert loop_dataset_tasks(multi) == {'cls_a': 'classification', 'x': '-'}
    dataset = SimpleNamespace(dataset_name='coco', task='detection')
    single = SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset))
    assert loop_dataset_tasks(single) == {'coco': 'detection'}
    bare = SimpleNamespace(dataloader=SimpleNamespace(dataset=object()))
    assert loop_dataset_tasks(bare) == {'object': '-'}


def test_table_and_json_hold_the_same_rows(tmp_path):
    rows = metrics_to_rows(
        {
            'cls_a/accuracy/top1': 54.166664,
            'ret/recall': [1.0, 0.5],
            'ret/count': 7
        }, TASKS)
    table = rows_to_table(rows, title='T')
    lines = [[c.strip() for c in line.strip('|').split('|')]
             for line in table.splitlines() if line.startswith('|')]
    assert lines[0] == list(COLUMNS)
    assert lines[1:] == [['classification', 'cls_a', 'accuracy/top1',
                          '54.1667'],
                         ['retrieval', 'ret', 'recall', '[1.0, 0.5]'],
                         ['retrieval', 'ret', 'count', '7']]
    assert table.splitlines()[0].startswith('+T')

    out = tmp_path / 'sub' / 'metrics.json'
    dump_rows(rows, str(out), checkpoint='c.pth')
    doc = json.loads(out.read_text())
    assert doc['checkpoint'] == 'c.pth'
    assert doc['results'] == [
        dict(task='classification', dataset='cls_a', metric='accuracy/top1',
             value=54.166664),
        dict(task='retrieval', dataset='ret', metric='recall',
             value=[1.0, 0.5]),
        dict(task='retrieval', dataset='ret', metric='count', value=7),
    ]


def test_format_value():
    assert format_value(1.23456789) == '1.2346'
    assert format_value(1.5, digits=1) == '1.5'
    assert format_value(3) == '3'
    assert format_value(True) == 'True'
    assert format_value('n/a') == 'n/a'
