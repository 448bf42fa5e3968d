# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""demo/image_demo.py on a generated shapes image with a tiny random-init
model: a subprocess run of every task, and in-process runs of the options."""
import glob
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch

from mmupv2.apis import UniPerceiverInferencer

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEMO = osp.join(REPO, 'demo', 'image_demo.py')
CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'upv2_tiny_random.py')


@pytest.fixture(scope='module')
def shapes_env(shapes_root):
    """``MMUPV2_SHAPES_ROOT`` (the tokenizer of the tiny config) for the
    module, in this process and in subprocesses."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MMUPV2_SHAPES_ROOT', shapes_root)
        yield dict(os.environ)


@pytest.fixture(scope='module')
def checkpoint(shapes_env, tmp_path_factory) -> str:
    """Random weights of the tiny config, with detection class names in
    ``meta.dataset_meta``."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = UniPerceiverInferencer(CONFIG).model
    path = str(tmp_path_factory.mktemp('demo_ckpt') / 'tiny.pth')
    meta = dict(dataset_meta=dict(
        det=dict(classes=('goldfish', 'tench'), task='detection')))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return path


@pytest.fixture(scope='module')
def image(shapes_root) -> str:
    return sorted(glob.glob(osp.join(shapes_root, 'images', 'val',
                                     '*.png')))[0]


@pytest.fixture(scope='module')
def demo():
    """The demo script as a module (its ``main(argv)``)."""
    spec = importlib.util.spec_from_file_location('image_demo', DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_all_tasks_subprocess(shapes_env, checkpoint, image, tmp_path):
    out_dir = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, DEMO, image, CONFIG, '--weights', checkpoint,
         '--task', 'all', '--out-dir', str(out_dir), '--score-thr', '0',
         '--checkpoint-classes'],
        env=shapes_env, cwd=REPO, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for section in ('[detect]', '[segment]', '[classify]', '[caption]'):
        assert section in proc.stdout
    # --checkpoint-classes: the checkpoint's detection classes are the
    # default ones
    assert 'goldfish' in proc.stdout.split('[segment]')[0]
    name = osp.basename(image)
    for task in ('detection', 'instance_segmentation', 'classification',
                 'captioning'):
        assert osp.isfile(out_dir / task / name), task


def test_demo_options_in_process(demo, shapes_env, checkpoint, image,
                                 tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert demo.main([
            image, CONFIG, '--weights', checkpoint, '--task', 'classify',
            '--classes', 'cat', 'dog', '--topk', '2', '--out-dir',
            str(tmp_path)
        ]) == 0
        out = capsys.readouterr().out
        assert 'cat' in out and 'dog' in out and 'circle' not in out
        assert demo.main([
            image, CONFIG, '--task', 'detect', '--classes', 'a', 'b',
            '--score-thr', '0', '--out-dir', str(tmp_path)
        ]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines if line.startswith('  ')
             and not line.startswith('  drawings')}
    assert names and names <= {'a', 'b'}
    assert osp.isfile(tmp_path / 'detection' / osp.basename(image))
    assert demo.main([str(tmp_path / 'missing.png'), CONFIG]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_demo_weights_of_another_model(demo, shapes_env, image, tmp_path,
                                       capsys):
    """A checkpoint that does not fit the config stops the demo, listing
    the keys; --allow-partial runs it with the config's class names."""
    from mmupv2.testing import ToyMultiTaskModel
    from mmupv2.utils import CheckpointMismatchError
    path = str(tmp_path / 'toy.pth')
    torch.save(dict(state_dict=ToyMultiTaskModel(
        tasks=dict(detection=2)).state_dict()), path)
    args = [image, CONFIG, '--weights', path, '--task', 'detect',
            '--score-thr', '0', '--out-dir', str(tmp_path)]
    with pytest.raises(CheckpointMismatchError,
                       match=r'unexpected keys \(4\): trunk'):
        demo.main(args)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert demo.main(args + ['--allow-partial']) == 0
    assert 'circle' in capsys.readouterr().out
