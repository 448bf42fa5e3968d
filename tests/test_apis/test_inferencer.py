# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""UniPerceiverInferencer on a tiny random-init model (CPU): every task with
paths and arrays, single and batched; class-name overrides (novel
categories); default classes from the config or the checkpoint; drawings;
errors."""
import os
import os.path as osp
import warnings

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmupv2.apis.model_zoo as model_zoo
from mmupv2.apis import UniPerceiverInferencer
from mmupv2.models.tasks.mask_paste import decode_rle_masks
from mmupv2.structures import UPv2DataSample

from .conftest import CKPT_DATASET_META

CONFIG_CLASSES = ['circle', 'square', 'triangle', 'diamond', 'star', 'cross',
                  'ring']


def _check_instances(sample, classes, ori_shape, with_mask=False):
    """The documented ``pred_instances`` of a detection / segmentation."""
    assert isinstance(sample, UPv2DataSample)
    inst = sample.pred_instances
    num = len(inst)
    assert num > 0 and inst.bboxes.shape == (num, 4)
    assert inst.scores.shape == inst.labels.shape == (num, )
    assert torch.all(inst.scores[:-1] >= inst.scores[1:])  # sorted
    assert int(inst.labels.max()) < len(classes)
    assert inst.label_names == [classes[i] for i in inst.labels.tolist()]
    assert list(sample.metainfo['classes']) == list(classes)
    h, w = ori_shape
    assert float(inst.bboxes[:, 0::2].max()) <= w
    assert float(inst.bboxes[:, 1::2].max()) <= h
    assert float(inst.bboxes.min()) >= 0
    if with_mask:  # COCO RLE at the original size
        assert len(inst.masks) == num
        assert decode_rle_masks(inst.masks).shape == (num, h, w)
    else:
        assert 'masks' not in inst


# ----------------------------------------------------------- detection
def test_detect_path_and_array_agree(inferencer, image_paths):
    by_path = inferencer.detect(image_paths[0])
    assert by_path.task == 'detection'
    _check_instances(by_path, CONFIG_CLASSES, (96, 96))
    by_array = inferencer.detect(mmcv.imread(image_paths[0]))
    torch.testing.assert_close(by_array.pred_instances.bboxes,
                               by_path.pred_instances.bboxes)
    torch.testing.assert_close(by_array.pred_instances.scores,
                               by_path.pred_instances.scores)


def test_detect_batched_arrays_of_two_sizes(inferencer, image_paths):
    img = mmcv.imread(image_paths[0])
    imgs = [img, img[:64, :80].copy()]
    preds = inferencer.detect(imgs, batch_size=2)
    assert isinstance(preds, list) and len(preds) == 2
    _check_instances(preds[0], CONFIG_CLASSES, (96, 96))
    _check_instances(preds[1], CONFIG_CLASSES, (64, 80))
    # a stacked (N, H, W, 3) array is a batch too
    stacked = inferencer.detect(np.stack([img, img]), batch_size=2)
    assert len(stacked) == 2


def test_detect_novel_classes(inferencer, image_paths, tmp_path, monkeypatch):
    """Any list of names is the label space (paper Appendix C); the drawn
    names come from it and the defaults come back afterwards."""
    drawn = []
    draw_texts = inferencer.visualizer.draw_texts

    def record(texts, *args, **kwargs):
        drawn.append(texts)
        return draw_texts(texts, *args, **kwargs)

    monkeypatch.setattr(inferencer.visualizer, 'draw_texts', record)
    sample = inferencer.detect(
        image_paths[0], classes=['a', ['b', 'bee']], out_dir=str(tmp_path),
        pred_score_thr=0.0)
    _check_instances(sample, ['a', 'b'], (96, 96))
    assert drawn and {t.split(':')[0] for t in drawn} <= {'a', 'b'}
    assert osp.isfile(tmp_path / 'detection' / osp.basename(image_paths[0]))
    assert inferencer.classes('detection') == CONFIG_CLASSES
    # the next call is in the default label space again
    _check_instances(inferencer.detect(image_paths[0]), CONFIG_CLASSES,
                     (96, 96))


# --------------------------------------------------------- segmentation
def test_segment_paths_and_arrays(inferencer, image_paths, tmp_path):
    preds = inferencer.segment(image_paths, batch_size=2)
    for sample in preds:
        _check_instances(sample, CONFIG_CLASSES, (96, 96), with_mask=True)
    img = mmcv.imread(image_paths[1])[:48, :72].copy()
    sample = inferencer.segment(img, classes=['goldfish', 'tench'],
                                out_dir=str(tmp_path), pred_score_thr=0.0)
    _check_instances(sample, ['goldfish', 'tench'], (48, 72), with_mask=True)
    drawing = mmcv.imread(str(tmp_path / 'instance_segmentation' /
                              f'{inferencer.num_visualized_imgs - 1:08d}.png'))
    assert drawing.shape == (48, 72, 3)


# ------------------------------------------------------- classification
def test_classify(inferencer, image_paths, tmp_path):
    preds = inferencer.classify(image_paths, topk=3, out_dir=str(tmp_path))
    for sample in preds:
        assert sample.task == 'classification'
        assert sample.pred_score.shape == (7, )
        torch.testing.assert_close(sample.pred_score.sum(), torch.tensor(1.))
        assert sample.pred_topk_labels.shape == (3, )
        assert torch.all(sample.pred_topk_scores[:-1] >=
                         sample.pred_topk_scores[1:])
        assert sample.pred_topk_classes == [
            CONFIG_CLASSES[i] for i in sample.pred_topk_labels.tolist()
        ]
        assert sample.pred_class == sample.pred_topk_classes[0] == \
            CONFIG_CLASSES[int(sample.pred_label)]
        assert osp.isfile(tmp_path / 'classification' /
                          osp.basename(sample.img_path))


def test_classify_with_labels(inferencer, image_paths):
    sample = inferencer.classify(
        mmcv.imread(image_paths[0]), labels=['cat', ['dog', 'puppy']])
    assert sample.pred_score.shape == (2, )
    assert sample.pred_topk_labels.shape == (2, )  # topk=5 clamped to C
    assert set(sample.pred_topk_classes) == {'cat', 'dog'}
    assert sample.metainfo['classes'] == ('cat', 'dog')
    assert inferencer.classes('classify') == CONFIG_CLASSES
    # a folder stands for its images, in name order
    folder = osp.dirname(image_paths[0])
    preds = inferencer.classify(folder, labels=['cat', 'dog'], batch_size=4)
    assert [osp.basename(p.img_path) for p in preds] == sorted(
        f for f in os.listdir(folder) if f.endswith('.png'))


# ------------------------------------------------------------ captioning
def test_caption(inferencer, image_paths, tmp_path):
    head = inferencer.model.tasks['captioning']
    sample = inferencer.caption(image_paths[0], out_dir=str(tmp_path))
    assert isinstance(sample.pred_caption, str)
    assert osp.isfile(tmp_path / 'captioning' / osp.basename(image_paths[0]))
    arrays = [mmcv.imread(p) for p in image_paths]
    greedy = inferencer.caption(arrays, beam_size=1, batch_size=2)
    assert [type(s.pred_caption) for s in greedy] == [str, str]
    assert head.beam_size == 2  # restored
    with pytest.raises(ValueError, match='beam_size'):
        inferencer.caption(arrays, beam_size=0)


# ------------------------------------------------------------- retrieval
def test_retrieve(inferencer, image_paths, tmp_path):
    texts = ['a red circle', 'a blue square on the left', 'two stars']
    result = inferencer.retrieve(
        images=image_paths, texts=texts, topk=2, out_dir=str(tmp_path))
    assert result.similarity.shape == (2, 3)
    for i, sample in enumerate(result.image_samples):
        assert sample.image_feat.shape == (
            inferencer.model.decoder.embed_dims, )
        torch.testing.assert_close(sample.image_feat.norm(), torch.tensor(1.))
        torch.testing.assert_close(sample.pred_score, result.similarity[i])
        assert sample.pred_label.tolist() == result.similarity[i].topk(
            2).indices.tolist()
        assert osp.isfile(tmp_path / 'retrieval' /
                          osp.basename(sample.img_path))
    for j, sample in enumerate(result.text_samples):
        assert sample.text == texts[j]
        assert sample.text_feat.shape == (
            1, inferencer.model.decoder.embed_dims)
        torch.testing.assert_close(sample.pred_score, result.similarity[:, j])
    only_texts = inferencer.retrieve(texts='a red circle')
    assert only_texts.similarity is None and not only_texts.image_samples
    torch.testing.assert_close(only_texts.text_samples[0].text_feat,
                               result.text_samples[0].text_feat)
    only_images = inferencer.retrieve(images=mmcv.imread(image_paths[0]))
    assert only_images.similarity is None
    assert 'pred_score' not in only_images.image_samples[0]


# ------------------------------------------------- checkpoint / config
def test_default_classes_from_config_or_checkpoint(tiny_config, checkpoint,
                                                   inferencer, image_paths):
    # by default the config's names (the checkpoint's meta is kept)
    by_config = UniPerceiverInferencer(tiny_config, weights=checkpoint)
    assert by_config.dataset_meta == CKPT_DATASET_META
    assert by_config.classes('detect') == CONFIG_CLASSES
    assert by_config.classes('classify') == CONFIG_CLASSES
    # the checkpoint's names when asked for
    loaded = UniPerceiverInferencer(
        tiny_config, weights=checkpoint, class_names='checkpoint')
    assert loaded.dataset_meta == CKPT_DATASET_META
    assert loaded.classes('detect') == ['goldfish', 'tench', 'shark']
    assert loaded.classes('classify') == ['dog', 'cat']
    # no meta entry of the task: the config's names
    assert loaded.classes('segment') == CONFIG_CLASSES
    for key, value in inferencer.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    sample = loaded.detect(image_paths[0])
    _check_instances(sample, ['goldfish', 'tench', 'shark'], (96, 96))
    assert loaded.classify(image_paths[0]).pred_score.shape == (2, )


@pytest.mark.filterwarnings('ignore:Checkpoint is not loaded')
def test_config_object_name_and_pipelines(tiny_config, monkeypatch,
                                          image_paths):
    cfg = Config.fromfile(tiny_config)
    assert 'mlm' not in UniPerceiverInferencer(cfg).pipeline
    # a config name is looked up under the config roots
    monkeypatch.setattr(model_zoo, 'CONFIG_ROOTS',
                        (osp.dirname(tiny_config), ))
    by_name = UniPerceiverInferencer('upv2_tiny_random')
    assert by_name.classes('detection') == CONFIG_CLASSES
    with pytest.raises(ValueError, match='upv2_tiny_random'):
        UniPerceiverInferencer('no_such_model')
    # no data sets in the config: an explicit pipeline, or the minimal one
    cfg.pop('test_dataloader')
    with pytest.warns(UserWarning) as record:
        bare = UniPerceiverInferencer(
            cfg,
            pipelines=dict(detection=[
                dict(type='LoadImageFromFile'),
                dict(type='mmdet.Resize', scale=(48, 48), keep_ratio=True),
                dict(type='PackUPv2Inputs')
            ]))
    missing = {str(w.message).split()[1] for w in record
               if 'pipeline in the config' in str(w.message)}
    assert missing == {'classification', 'captioning', 'retrieval'}
    sample = bare.segment(image_paths[0])  # detection's pipeline (sibling)
    assert sample.img_shape == (48, 48)
    assert sample.pred_instances.masks[0]['size'] == [96, 96]
    assert bare.classify(image_paths[0]).img_shape == (96, 96)


def test_real_tiny_image_encoder(tiny_config, image_paths):
    """The region-proposal image encoder of image_encoder_tiny.py."""
    cfg = Config.fromfile(tiny_config)
    base = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                    'models', 'image_encoder_tiny.py')
    cfg.model.image_encoder = Config.fromfile(base).image_encoder
    cfg.model.decoder.image_in_dims = 64
    cfg.model.tasks = dict(
        instance_segmentation=dict(
            type='InstanceSegmentationTask', classes=['a', 'b']))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        real = UniPerceiverInferencer(cfg)
        sample = real.segment(mmcv.imread(image_paths[0])[:64, :80].copy())
    _check_instances(sample, ['a', 'b'], (64, 80), with_mask=True)


# ------------------------------------------------------ mmengine entry
def test_call_returns_dicts_and_drawings(inferencer, image_paths):
    out = inferencer(image_paths, task='segment', return_vis=True,
                     batch_size=2)
    assert [v.shape for v in out['visualization']] == [(96, 96, 3)] * 2
    pred = out['predictions'][0]
    assert pred['task'] == 'instance_segmentation'
    assert len(pred['bboxes']) == len(pred['masks']) == len(pred['labels'])
    assert isinstance(pred['masks'][0]['counts'], str)
    out = inferencer(image_paths[0], task='classification', topk=2,
                     classes=['x', 'y', 'z'])
    assert len(out['predictions'][0]['topk_classes']) == 2
    assert out['visualization'] is None
    out = inferencer(image_paths[0], task='caption', return_datasamples=True)
    assert isinstance(out['predictions'][0].pred_caption, str)
    out = inferencer(image_paths, task='retrieve', texts=['a', 'b c'])
    assert len(out['predictions'][0]['pred_score']) == 2


# ----------------------------------------------------------------- errors
def test_errors(inferencer, image_paths, tiny_config):
    img = mmcv.imread(image_paths[0])
    with pytest.raises(ValueError, match="unknown task 'vqa'"):
        inferencer(img, task='vqa')
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer.detect('missing.png')
    with pytest.raises(ValueError, match=r'image 1: .*\(96, 96\)'):
        inferencer.classify([img, img[..., 0]])
    with pytest.raises(ValueError, match='float32'):
        inferencer.classify(img.astype(np.float32))
    with pytest.raises(TypeError, match='image 0'):
        inferencer.caption([torch.zeros(3, 8, 8)])
    with pytest.raises(ValueError, match=r'classes: classes\[1\]'):
        inferencer.detect(img, classes=['cat', ''])
    with pytest.raises(ValueError, match='labels: '):
        inferencer.classify(img, labels='cat')
    with pytest.raises(ValueError, match='topk'):
        inferencer.classify(img, topk=0)
    with pytest.raises(ValueError, match='batch_size'):
        inferencer.detect(img, batch_size=0)
    with pytest.raises(ValueError, match='images=.*texts='):
        inferencer.retrieve()
    with pytest.raises(ValueError, match=r'texts\[1\]'):
        inferencer.retrieve(texts=['a', ''])
    assert inferencer.classes('detection') == CONFIG_CLASSES
    cfg = Config.fromfile(tiny_config)
    cfg.model.tasks = dict(detection=dict(type='DetectionTask'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        no_names = UniPerceiverInferencer(cfg)
    with pytest.raises(ValueError, match=r'pass classes=\[\.\.\.\]'):
        no_names.detect(img)
    assert len(no_names.detect(img, classes=['cat']).pred_instances) > 0
    with pytest.raises(ValueError, match="no 'captioning' task head"):
        no_names.caption(img)


def test_detect_imagenet_classes_through_config(tiny_config, image_paths):
    """Novel categories through the config (paper Appendix C): detection
    with ImageNet-1k's class names set in ``model.tasks.detection``."""
    from mmengine.config import Config
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    cfg = Config.fromfile(tiny_config)
    names = [c.split(',')[0] for c in IMAGENET_CATEGORIES]
    cfg.model.tasks.detection.classes = names
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        novel = UniPerceiverInferencer(cfg)
    sample = novel.detect(image_paths[0])
    labels = sample.pred_instances.labels
    assert len(labels) and int(labels.max()) < 1000
    assert set(sample.pred_instances.label_names) <= set(names)


def test_detect_without_detection_head(tiny_config, image_paths, tmp_path):
    """A model trained as the Swin-B/L configs (one instance segmentation
    head for COCO's detection and segmentation) answers ``detect`` with
    that head's boxes: the segmentation minus its masks."""
    cfg = Config.fromfile(tiny_config)
    del cfg.model.tasks['detection']
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        seg_only = UniPerceiverInferencer(cfg)
    assert 'detection' not in seg_only.model.tasks
    boxes = seg_only.detect(image_paths[0], out_dir=str(tmp_path))
    assert boxes.task == 'detection'
    _check_instances(boxes, CONFIG_CLASSES, (96, 96))
    masks = seg_only.segment(image_paths[0])
    torch.testing.assert_close(boxes.pred_instances.bboxes,
                               masks.pred_instances.bboxes)
    assert boxes.pred_instances.label_names == \
        masks.pred_instances.label_names
    assert osp.isfile(osp.join(tmp_path, 'detection',
                               osp.basename(image_paths[0])))
    # the novel-class override reaches the segmentation head too
    novel = seg_only.detect(image_paths[0], classes=['goldfish', 'tench'])
    _check_instances(novel, ['goldfish', 'tench'], (96, 96))
    assert seg_only.classes('segment') == CONFIG_CLASSES
