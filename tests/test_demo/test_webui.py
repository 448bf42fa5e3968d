# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""demo/webui.py: the Gradio page of the tiny shapes model (random
weights) served on 127.0.0.1, every task called through
``gradio_client`` as a browser would; the drawing comes back as a PNG of
the image's size, with labels and scores."""
import glob
import importlib.util
import os
import os.path as osp
import socket
import warnings

# before gradio is imported: no analytics / version checks (no internet)
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from PIL import Image  # noqa: E402

from mmupv2.apis import UniPerceiverInferencer  # noqa: E402

gradio_client = pytest.importorskip(
    'gradio_client', reason="the web demo extra: pip install -e '.[webui]'")

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
WEBUI = osp.join(REPO, 'demo', 'webui.py')
TINY = osp.join(REPO, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
CLASSES = ['circle', 'square', 'triangle', 'diamond', 'star', 'cross',
           'ring']


@pytest.fixture(scope='module')
def webui():
    """The demo script as a module."""
    spec = importlib.util.spec_from_file_location('webui', WEBUI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def inferencer(shapes_root) -> UniPerceiverInferencer:
    """The tiny shapes config, random weights, the session's tokenizer."""
    cfg = Config.fromfile(TINY)
    cfg.model.text_encoder.tokenizer = osp.join(shapes_root, 'tokenizer')
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "Checkpoint is not loaded"
        return UniPerceiverInferencer(cfg)


@pytest.fixture(scope='module')
def images(shapes_root):
    return sorted(glob.glob(osp.join(shapes_root, 'images', 'val',
                                     '*.png')))[:2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def client(webui, inferencer, images, tmp_path_factory):
    """The app on a free port of 127.0.0.1, in a thread; a client of it.
    Gradio's files go to a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('GRADIO_TEMP_DIR', str(tmp_path_factory.mktemp('gradio')))
        app = webui.build_app(inferencer, examples=images,
                              model_info='tiny shapes model',
                              warning='random weights')
        port = _free_port()
        app.launch(server_name='127.0.0.1', server_port=port,
                   prevent_thread_lock=True, quiet=True, show_error=True)
        try:
            yield gradio_client.Client(
                f'http://127.0.0.1:{port}/', verbose=False,
                download_files=str(tmp_path_factory.mktemp('downloads')))
        finally:
            app.close()


def _call(client, image, task, class_names='', texts='', score_thr=0.0,
          topk=3):
    drawing, table, details, summary = client.predict(
        gradio_client.handle_file(image), task, class_names, texts,
        score_thr, topk, api_name='/predict')
    return drawing, table, details, summary


def _check_drawing(path, image):
    """A PNG of the input's size that is not blank."""
    assert osp.isfile(path) and path.endswith('.png'), path
    drawn = np.asarray(Image.open(path).convert('RGB'))
    source = np.asarray(Image.open(image).convert('RGB'))
    assert drawn.shape == source.shape  # (96, 96, 3)
    assert drawn.std() > 5  # not a blank picture
    return drawn, source


def _rows(table):
    """The rows of the returned Dataframe value (headers + data)."""
    assert table['headers'] == ['rank', 'label / text', 'score',
                                'box (x1, y1, x2, y2)']
    return table['data']


@pytest.mark.parametrize('task', ['detect', 'segment'])
def test_localization(client, images, task):
    drawing, table, details, summary = _call(client, images[0], task)
    drawn, source = _check_drawing(drawing, images[0])
    assert (drawn != source).any()  # boxes drawn (threshold 0)
    rows = _rows(table)
    assert details['task'] == ('detection' if task == 'detect' else
                               'instance_segmentation')
    assert details['classes'] == CLASSES
    assert 0 < len(rows) == len(details['instances'])
    scores = [row[2] for row in rows]
    assert scores == sorted(scores, reverse=True)
    for row, inst in zip(rows, details['instances']):
        assert row[1] in CLASSES and row[1] == inst['label']
        assert len(inst['bbox']) == 4
        assert 0 <= min(inst['bbox']) and max(inst['bbox']) <= 96
    assert 'instances score above 0' in summary


def test_detect_novel_class_names(client, images):
    """Typed names (one with a synonym) are the label space of the call."""
    _, table, details, _ = _call(client, images[0], 'detect',
                                 'goldfish | gold fish, tench')
    assert details['classes'] == ['goldfish', 'tench']
    assert {row[1] for row in _rows(table)} <= {'goldfish', 'tench'}


def test_classify(client, images):
    drawing, table, details, summary = _call(
        client, images[1], 'classify', 'red thing, blue thing, green thing',
        topk=2)
    _check_drawing(drawing, images[1])
    rows = _rows(table)
    assert [row[0] for row in rows] == [1, 2]
    assert details['classes'] == ['red thing', 'blue thing', 'green thing']
    assert rows[0][1] == details['pred_class']
    assert rows[0][2] >= rows[1][2] and 0 <= rows[1][2] <= 1
    assert details['pred_class'] in summary


def test_classify_default_labels(client, images):
    _, table, details, _ = _call(client, images[1], 'classify', topk=5)
    assert details['classes'] == CLASSES
    assert len(_rows(table)) == 5


def test_caption(client, images):
    drawing, table, details, summary = _call(client, images[0], 'caption')
    drawn, source = _check_drawing(drawing, images[0])
    assert (drawn != source).any()  # the caption is written on it
    assert details['task'] == 'captioning'
    assert isinstance(details['caption'], str)
    assert _rows(table)[0][1] == details['caption']


def test_retrieve(client, images):
    texts = ['a red circle', 'two blue squares', 'a green star']
    drawing, table, details, summary = _call(
        client, images[0], 'retrieve', texts='\n'.join(texts) + '\n\n')
    _check_drawing(drawing, images[0])
    rows = _rows(table)
    assert sorted(row[1] for row in rows) == sorted(texts)
    scores = [row[2] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r['text'] for r in details['ranking']] == [
        row[1] for row in rows
    ]
    assert rows[0][1] in summary


def test_errors_reach_the_page(client, images):
    """A bad request answers with the message, not a crash."""
    with pytest.raises(Exception, match='one per line'):
        _call(client, images[0], 'retrieve', texts='  ')


def test_helpers(webui, tmp_path):
    assert webui.parse_class_names(' a, b|c ,, ') == ['a', ['b', 'c']]
    assert webui.parse_class_names('  ') is None
    assert webui.parse_texts('x\n\n y \n') == ['x', 'y']
    assert webui.find_checkpoint(str(tmp_path)) is None
    (tmp_path / 'iter_200.pth').write_bytes(b'')
    assert webui.find_checkpoint(str(tmp_path)).endswith('iter_200.pth')
    (tmp_path / 'iter_1500.pth').write_bytes(b'')
    os.utime(tmp_path / 'iter_1500.pth', (0, 0))  # older, but preferred
    assert webui.find_checkpoint(str(tmp_path)).endswith('iter_1500.pth')


def test_webui_pins_are_in_the_test_requirements():
    """``make test`` installs the extra's exact pins (requirements/
    tests.txt repeats requirements/webui.txt)."""

    def pins(name):
        with open(osp.join(REPO, 'requirements', name)) as f:
            lines = (line.split('#', 1)[0].strip() for line in f)
            return {line for line in lines if line}

    webui_pins = pins('webui.txt')
    assert webui_pins and all('==' in pin for pin in webui_pins)
    assert webui_pins <= pins('tests.txt')


def test_preload(webui, inferencer, images):
    """``preload``: the page is built with the first example's result."""
    app = webui.build_app(inferencer, examples=images, preload='retrieve')
    values = [block.value for block in app.blocks.values()
              if getattr(block, 'label', None) == 'JSON']
    assert values and len(values[0]['ranking']) == 3
    with pytest.raises(ValueError, match='preload'):
        webui.build_app(inferencer, examples=[], preload='detect')


def test_main_without_a_checkpoint(webui, shapes_root, tmp_path,
                                   monkeypatch, capsys):
    """No ``--weights`` and no ``make demo`` checkpoint: random weights,
    said on stderr and on the page; served where asked."""
    import gradio as gr

    launched = {}

    def launch(app, **kwargs):
        launched.update(kwargs, app=app)

    monkeypatch.setenv('MMUPV2_SHAPES_ROOT', shapes_root)
    monkeypatch.setattr(webui, 'DEFAULT_WORK_DIR', str(tmp_path))
    monkeypatch.setattr(gr.Blocks, 'launch', launch)
    config = osp.join(REPO, 'tests', 'data', 'configs', 'upv2_tiny_random.py')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert webui.main([config, '--port', '7999']) == 0
    assert 'random weights' in capsys.readouterr().err
    assert launched['server_name'] == '127.0.0.1'
    assert launched['server_port'] == 7999
    texts = [block.value for block in launched['app'].blocks.values()
             if isinstance(block, gr.Markdown)]
    assert any('random weights' in (text or '') for text in texts)
