# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""configs/uniperceiver_v2/metafile.yml (the model zoo index, OpenMMLab
format) against the configs folder: every model config is listed, every
listed config exists, and the entries are well formed."""
import glob
import numbers
import os.path as osp

import mmengine

from mmupv2.apis.model_zoo import model_index, read_metafile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ZOO = osp.join(ROOT, 'configs', 'uniperceiver_v2')
METAFILE = osp.join(ZOO, 'metafile.yml')
#: OpenMMLab task names used in the Results (mmdet / mmpretrain spelling).
TASKS = {
    'Image Classification', 'Object Detection', 'Instance Segmentation',
    'Image Caption', 'Image-To-Text Retrieval', 'Text-To-Image Retrieval'
}


def test_every_config_is_listed_and_every_listed_config_exists():
    configs = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ZOO, '*.py'))
    }
    doc = mmengine.load(METAFILE)
    listed = [m['Config'] for m in doc['Models']]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    assert configs - set(listed) == set(), 'configs missing in metafile.yml'
    assert set(listed) - configs == set(), 'metafile.yml names no such file'
    for info in read_metafile(METAFILE):
        assert osp.isfile(info.config), info.config


def test_entries_are_well_formed():
    doc = mmengine.load(METAFILE)
    collections = {c['Name']: c for c in doc['Collections']}
    for collection in collections.values():
        assert osp.isfile(osp.join(ROOT, collection['README']))
        assert collection['Paper']['URL'].startswith('https://arxiv.org/')
    names = [m['Name'] for m in doc['Models']]
    assert len(names) == len(set(names))
    for model in doc['Models']:
        name = model['Name']
        assert set(model) >= {'Name', 'In Collection', 'Config', 'Metadata',
                              'Results', 'Weights'}, name
        # OpenMMLab's habit: the name is the config's file name
        assert osp.basename(model['Config']) == name + '.py'
        assert model['In Collection'] in collections, name
        assert model['Metadata']['Training Data'], name
        assert model['Weights'] in (None, '') or isinstance(
            model['Weights'], str), name
        for result in model['Results'] or []:
            assert result['Task'] in TASKS, (name, result['Task'])
            assert result['Dataset'], name
            values = list(result['Metrics'].values())
            assert values and all(
                isinstance(v, numbers.Number) and 0 < v <= 200
                for v in values), (name, result)


def test_paper_numbers_of_the_main_models():
    """Table 6 (no task-specific fine-tuning)."""
    index = model_index([osp.join(ROOT, 'configs')])

    def metric(name, task, dataset, key):
        for result in index[name].results:
            if (result['Task'], result['Dataset']) == (task, dataset):
                return result['Metrics'][key]
        raise KeyError((name, task, dataset))

    base = 'upv2_swin-b_32xb-mt-200k_table8'
    large = 'upv2_swin-l_64xb-mt-200k_table8'
    assert metric(base, 'Image Classification', 'ImageNet-1k',
                  'Top 1 Accuracy') == 86.3
    assert metric(large, 'Object Detection', 'COCO', 'box AP') == 61.9
    assert metric(large, 'Instance Segmentation', 'COCO', 'mask AP') == 53.6
    assert metric(base, 'Image Caption', 'COCO', 'CIDER') == 116.9
    assert metric(large, 'Text-To-Image Retrieval', 'Flickr30k',
                  'Recall@1') == 79.6
    assert metric('upv2_r50_16xb-mt-150k_4tasks', 'Object Detection', 'COCO',
                  'box AP') == 49.9


def test_model_index_imports_the_metafile():
    doc = mmengine.load(osp.join(ROOT, 'model-index.yml'))
    assert 'configs/uniperceiver_v2/metafile.yml' in doc['Import']
