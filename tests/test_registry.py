# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The registries are children of mmengine's, import their locations by
themselves, and reach the other OpenMMLab packages by scope prefix."""
import subprocess
import sys

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope

from mmupv2 import registry
from mmupv2.utils import register_all_modules


def test_children_of_mmengine():
    assert registry.MODELS.parent is MMENGINE_MODELS
    for name in ('DATASETS', 'TRANSFORMS', 'MODELS', 'LOOPS', 'HOOKS',
                 'OPTIMIZERS', 'METRICS', 'EVALUATOR'):
        reg = getattr(registry, name)
        assert reg.scope == 'mmupv2', name
        assert reg._locations, f'{name} has no locations'


def test_config_builds_without_imports(shapes_root):
    """A fresh interpreter builds an mmupv2 data set from a plain config: the
    registry imports ``mmupv2.datasets`` by itself."""
    code = f"""
from mmengine.registry import DATASETS, init_default_scope
init_default_scope('mmupv2')
ds = DATASETS.build(dict(
    type='UPv2CocoDataset', data_root={shapes_root!r},
    ann_file='annotations/instances_val.json',
    data_prefix=dict(img='images/'),
    metainfo=dict(classes=('circle', 'square', 'triangle', 'diamond',
                           'star', 'cross', 'ring'))))
print(type(ds).__module__, len(ds))
"""
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[-1].split() == ['mmupv2.datasets.coco', '6']


def test_cross_scope_build():
    register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'mmupv2'
    resnet = registry.MODELS.build(
        dict(type='mmpretrain.ResNet', depth=18, out_indices=(3, )))
    assert type(resnet).__module__.startswith('mmpretrain')
    metric = registry.METRICS.build(dict(type='mmpretrain.Accuracy'))
    assert type(metric).__name__ == 'Accuracy'
    pack = registry.TRANSFORMS.build(dict(type='PackUPv2Inputs'))
    assert type(pack).__name__ == 'PackUPv2Inputs'
