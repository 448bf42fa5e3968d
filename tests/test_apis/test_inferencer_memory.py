# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Memory on large inputs: a 4000x4000 image through ``segment()`` of the
tiny shapes model, and the inferencer's limit on the input size."""
import json
import os
import os.path as osp
import subprocess
import sys
import warnings

import mmcv
import pytest
from mmengine.config import Config

from mmupv2.apis import UniPerceiverInferencer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')

#: Run in a fresh process: its peak RSS is the call's, not the test
#: session's.
SEGMENT_4000 = r'''
import json, resource, sys, time, warnings
import numpy as np, torch
from mmengine.config import Config
from mmupv2.apis import UniPerceiverInferencer
warnings.simplefilter('ignore')
torch.set_num_threads(1)
cfg = Config.fromfile(sys.argv[1])
cfg.model.text_encoder.tokenizer = sys.argv[2]
torch.manual_seed(0)
inferencer = UniPerceiverInferencer(cfg)
image = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), np.uint8)
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
before, start = rss(), time.time()
sample = inferencer.segment(image)
print(json.dumps(dict(
    before_gb=before, peak_gb=rss(), seconds=time.time() - start,
    num=len(sample.pred_instances), masks=len(sample.pred_instances.masks),
    size=sample.pred_instances.masks[0]['size'],
    box_max=float(sample.pred_instances.bboxes.max()))))
'''


def test_segment_4000x4000_stays_under_2_5_gb(shapes_root):
    """Before: 100 dense (4000, 4000) float masks (6.4 GB) on top of the
    image encoder at full size; 15 GB peak RSS, 2.3 min. Now the shapes
    pipeline shrinks the input to 160 (``LimitImageSize``) and each mask
    is pasted at 4000x4000 alone, only in its window, into RLE: measured
    1.2 GB peak RSS (1.0 GB of it imports, model and image before the
    call), under 5 s. Bound: 2.5 GB in all, and the call adds at most
    1 GB (the dense masks alone were 6.4 GB)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-c', SEGMENT_4000, TINY,
         osp.join(shapes_root, 'tokenizer')],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['num'] == result['masks'] == 100
    assert result['size'] == [4000, 4000]  # original-image pixels
    assert result['box_max'] <= 4000
    assert result['peak_gb'] < 2.5, result
    assert result['peak_gb'] - result['before_gb'] < 1.0, result


def test_max_image_size_caps_the_input(tiny_config, image_paths):
    """A pipeline without resize: the inferencer's ``max_image_size``
    shrinks the image; boxes and masks stay in the original pixels."""
    cfg = Config.fromfile(tiny_config)
    no_resize = [dict(type='LoadImageFromFile'), dict(type='PackUPv2Inputs')]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        capped = UniPerceiverInferencer(
            cfg, max_image_size=64,
            pipelines=dict(instance_segmentation=no_resize))
        sample = capped.segment(mmcv.imread(image_paths[0]))
        assert sample.img_shape == (64, 64) and sample.ori_shape == (96, 96)
        assert sample.pred_instances.masks[0]['size'] == [96, 96]
        assert float(sample.pred_instances.bboxes.max()) <= 96
        free = UniPerceiverInferencer(
            cfg, max_image_size=None,
            pipelines=dict(instance_segmentation=no_resize))
        assert free.segment(image_paths[0]).img_shape == (96, 96)
    assert UniPerceiverInferencer.__init__.__kwdefaults__[
        'max_image_size'] == 1600
    with pytest.raises(ValueError, match='max_image_size'):
        UniPerceiverInferencer(cfg, max_image_size=0)
