# Data pipelines of Uni-Perceiver v2 (paper Appendix B).
#
# Classification, captioning and retrieval: Uni-Perceiver-style augmentation
# at 224 (ResNet-50) or 384 (Swin). Captioning / retrieval do not flip: the
# texts say "left" and "right".
# Detection / instance segmentation: random resize (shorter side 200-1800,
# longer <= 2400), crop 1600x1600; test: shorter 1400, longer <= 1600.
_bgr_mean = [103.53, 116.28, 123.675]
_bgr_std = [57.375, 57.12, 58.395]


def _rand_augment():
    return dict(
        type='mmpretrain.RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in _bgr_mean[::-1]],
                     interpolation='bicubic'))


def _cls_train(size):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='mmpretrain.RandomResizedCrop', scale=size,
             backend='pillow', interpolation='bicubic'),
        dict(type='mmpretrain.RandomFlip', prob=0.5,
             direction='horizontal'),
        _rand_augment(),
        dict(type='mmpretrain.RandomErasing', erase_prob=0.25, mode='rand',
             min_area_ratio=0.02, max_area_ratio=1 / 3,
             fill_color=_bgr_mean, fill_std=_bgr_std),
        dict(type='PackUPv2Inputs'),
    ]


def _cls_test(size):
    # 224: resize the short edge to 256 and centre-crop (ImageNet practice);
    # 384: resize to 384x384 (Swin-384 practice).
    resize = dict(type='mmpretrain.ResizeEdge', scale=256, edge='short',
                  backend='pillow', interpolation='bicubic') \
        if size == 224 else dict(type='mmpretrain.Resize', scale=size,
                                 backend='pillow', interpolation='bicubic')
    crop = [dict(type='mmpretrain.CenterCrop', crop_size=size)] \
        if size == 224 else []
    return [dict(type='LoadImageFromFile'), resize, *crop,
            dict(type='PackUPv2Inputs')]


def _text_image_train(size):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='mmpretrain.RandomResizedCrop', scale=size,
             crop_ratio_range=(0.5, 1.0), backend='pillow',
             interpolation='bicubic'),
        _rand_augment(),
        dict(type='PackUPv2Inputs'),
    ]


def _text_image_test(size):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='mmpretrain.Resize', scale=(size, size), backend='pillow',
             interpolation='bicubic'),
        dict(type='PackUPv2Inputs'),
    ]


cls_train_pipeline_224 = _cls_train(224)
cls_train_pipeline_384 = _cls_train(384)
cls_test_pipeline_224 = _cls_test(224)
cls_test_pipeline_384 = _cls_test(384)
text_image_train_pipeline_224 = _text_image_train(224)
text_image_train_pipeline_384 = _text_image_train(384)
text_image_test_pipeline_224 = _text_image_test(224)
text_image_test_pipeline_384 = _text_image_test(384)

det_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.RandomChoiceResize',
         scales=[(2400, s) for s in range(200, 1801, 32)],
         keep_ratio=True),
    dict(type='mmdet.RandomCrop', crop_type='absolute',
         crop_size=(1600, 1600), recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackUPv2Inputs'),
]
det_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(1600, 1400), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackUPv2Inputs'),
]
mlm_pipeline = [dict(type='PackUPv2Inputs')]
