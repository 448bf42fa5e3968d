# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import json
import os.path as osp
import subprocess
import sys

from mmupv2.datasets import ImageTextPairDataset, TextLinesDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'dataset_converters')


def _run(script, *args):
    return subprocess.run([sys.executable, osp.join(TOOLS, script), *args],
                          capture_output=True, text=True, check=True).stdout


def test_img2dataset_and_tsv_and_karpathy(tmp_path, shapes_root):
    # img2dataset "files" layout: 00000/000000000.jpg + .txt
    shard = tmp_path / 'cc3m' / 'images' / '00000'
    shard.mkdir(parents=True)
    src = osp.join(shapes_root, 'images', 'val', '000000.png')
    for k, caption in enumerate(['a red star', '  ', 'a blue  ring']):
        (shard / f'{k:09d}.png').write_bytes(open(src, 'rb').read())
        (shard / f'{k:09d}.txt').write_text(caption)
    out = tmp_path / 'cc3m' / 'annotations' / 'train.jsonl'
    stdout = _run('image_text_pairs.py', 'img2dataset',
                  str(tmp_path / 'cc3m' / 'images'), str(out), '--root',
                  str(tmp_path / 'cc3m'))
    assert 'wrote 2 pairs' in stdout and '1 dropped' in stdout
    ds = ImageTextPairDataset(
        data_root=str(tmp_path / 'cc3m'), ann_file=str(out),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackUPv2Inputs')])
    assert [ds.get_data_info(i)['text'] for i in range(2)] == \
        ['a red star', 'a blue ring']
    assert ds[1]['inputs'].shape[0] == 3

    tsv = tmp_path / 'sbu.tsv'
    tsv.write_text('url\tcaption\nimg/1.jpg\tA dog\nimg/2.jpg\tA cat\n')
    _run('image_text_pairs.py', 'tsv', str(tsv), str(tmp_path / 'sbu.jsonl'),
         '--skip-header')
    lines = [json.loads(line) for line in
             (tmp_path / 'sbu.jsonl').read_text().splitlines()]
    assert lines == [dict(image='img/1.jpg', caption='A dog'),
                     dict(image='img/2.jpg', caption='A cat')]

    _run('image_text_pairs.py', 'karpathy',
         osp.join(shapes_root, 'annotations', 'karpathy_shapes.json'),
         str(tmp_path / 'k.jsonl'), '--split', 'val')
    pairs = (tmp_path / 'k.jsonl').read_text().splitlines()
    assert len(pairs) == 6 * 3
    assert json.loads(pairs[0])['image'] == 'val/000000.png'


def test_visual_genome(tmp_path):
    regions = [dict(id=1, regions=[
        dict(image_id=1, phrase='man wearing a hat '),
        dict(image_id=1, phrase='')])]
    (tmp_path / 'regions.json').write_text(json.dumps(regions))
    stdout = _run('image_text_pairs.py', 'vg', str(tmp_path / 'regions.json'),
                  str(tmp_path / 'vg.jsonl'))
    assert 'wrote 1 pairs' in stdout
    assert json.loads((tmp_path / 'vg.jsonl').read_text()) == dict(
        image='VG_100K/1.jpg', caption='man wearing a hat')


def test_text_corpus(tmp_path):
    raw = tmp_path / 'book.txt'
    raw.write_text('First sentence here. Second one is longer than that.\n'
                   'still the same paragraph.\n\nTiny.\n\n' +
                   ' '.join(['word'] * 25) + '\n')
    out = tmp_path / 'corpus' / 'train.txt'
    stdout = _run('text_corpus.py', str(raw), '--out', str(out),
                  '--max-words', '10', '--min-words', '2')
    lines = out.read_text().splitlines()
    # whole sentences are packed up to --max-words
    assert lines[0] == 'First sentence here. Second one is longer than that.'
    assert lines[1] == 'still the same paragraph.'
    # a sentence longer than a passage is cut
    assert lines[2:] == [' '.join(['word'] * 10)] * 2 + [
        ' '.join(['word'] * 5)]
    assert 'Tiny.' not in lines  # shorter than --min-words
    assert all(len(line.split()) <= 10 for line in lines)
    assert f'wrote {len(lines)} passages' in stdout
    ds = TextLinesDataset(ann_file=str(out))
    assert len(ds) == len(lines)
