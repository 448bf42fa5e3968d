# COCO Caption, Karpathy split (data/coco: train2014/, val2014/,
# annotations/dataset_coco.json, annotations/captions_val2014.json).
# Training uses the 'train' and 'restval' splits; the 5k 'test' split
# evaluates captioning (BLEU-4, CIDEr) and retrieval (R@1/5/10 both ways).
_base_ = ['./pipelines.py']
coco_caption_root = 'data/coco/'


def _dataset(kind, split, pipeline, test_mode):
    return dict(
        type=f'Karpathy{kind}Dataset',
        data_root=coco_caption_root,
        ann_file='annotations/dataset_coco.json',
        data_prefix=dict(img_path=''),
        split=split,
        test_mode=test_mode,
        dataset_name='coco_karpathy',
        pipeline=pipeline)


def _loader(dataset, batch_size, train):
    return dict(
        batch_size=batch_size,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='InfiniteSampler', shuffle=True) if train else
        dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dataset)


coco_caption_train_dataloader_224 = _loader(
    _dataset('Caption', ('train', 'restval'),
             {{_base_.text_image_train_pipeline_224}}, False), 24, True)
coco_caption_train_dataloader_384 = _loader(
    _dataset('Caption', ('train', 'restval'),
             {{_base_.text_image_train_pipeline_384}}, False), 24, True)
coco_retrieval_train_dataloader_224 = _loader(
    _dataset('Retrieval', ('train', 'restval'),
             {{_base_.text_image_train_pipeline_224}}, False), 28, True)
coco_retrieval_train_dataloader_384 = _loader(
    _dataset('Retrieval', ('train', 'restval'),
             {{_base_.text_image_train_pipeline_384}}, False), 28, True)
coco_caption_test_dataloader_224 = _loader(
    _dataset('Caption', 'test', {{_base_.text_image_test_pipeline_224}},
             True), 32, False)
coco_caption_test_dataloader_384 = _loader(
    _dataset('Caption', 'test', {{_base_.text_image_test_pipeline_384}},
             True), 32, False)
coco_retrieval_test_dataloader_224 = _loader(
    _dataset('Retrieval', 'test', {{_base_.text_image_test_pipeline_224}},
             True), 32, False)
coco_retrieval_test_dataloader_384 = _loader(
    _dataset('Retrieval', 'test', {{_base_.text_image_test_pipeline_384}},
             True), 32, False)
coco_caption_evaluator = dict(
    type='CaptionMetric', scorers=('BLEU', 'CIDEr'), prefix='captioning')
coco_retrieval_evaluator = dict(
    type='ImageTextRetrievalMetric', topk=(1, 5, 10), prefix='retrieval')
