# Flickr30k retrieval, Karpathy split (data/flickr30k: flickr30k-images/,
# dataset_flickr30k.json). Evaluation only (1k test images); not trained on.
_base_ = ['./pipelines.py']
flickr30k_root = 'data/flickr30k/'


def _loader(pipeline):
    return dict(
        batch_size=32,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='KarpathyRetrievalDataset',
            data_root=flickr30k_root,
            ann_file='dataset_flickr30k.json',
            data_prefix=dict(img_path='flickr30k-images'),
            split='test',
            test_mode=True,
            dataset_name='flickr30k',
            pipeline=pipeline))


flickr30k_test_dataloader_224 = _loader(
    {{_base_.text_image_test_pipeline_224}})
flickr30k_test_dataloader_384 = _loader(
    {{_base_.text_image_test_pipeline_384}})
flickr30k_evaluator = dict(
    type='ImageTextRetrievalMetric', topk=(1, 5, 10), prefix='retrieval')
