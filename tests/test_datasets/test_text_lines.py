# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest

from mmupv2.datasets import AnnotationError, TextLinesDataset


def test_loads_generated_text(shapes_root):
    ds = TextLinesDataset(data_root=shapes_root, ann_file='text/train.txt',
                          pipeline=[dict(type='PackUPv2Inputs')])
    assert len(ds) == 36
    packed = ds[0]
    assert 'inputs' not in packed  # text only
    assert packed['data_samples'].task == 'mlm'
    assert packed['data_samples'].text == ds.get_data_info(0)['text']


def test_bad_text(tmp_path):
    path = tmp_path / 'corpus.txt'
    path.write_bytes(b'good line\n\xff\xfe bad\n')
    with pytest.raises(AnnotationError, match='line 2.*UTF-8'):
        TextLinesDataset(ann_file=str(path))
    path.write_text('\n\n')
    with pytest.raises(AnnotationError, match='no text line'):
        TextLinesDataset(ann_file=str(path))
