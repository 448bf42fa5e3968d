# Web image-text pairs for captioning and retrieval training (paper Table 8):
# data/<name>/images/... and data/<name>/annotations/train.jsonl written by
# tools/dataset_converters/image_text_pairs.py. Batch sizes per GPU: 24
# (captioning), 28 (retrieval).
_base_ = ['./pipelines.py']
pair_sources = ('yfcc', 'cc12m', 'cc3m', 'vg', 'sbu')


def _loader(name, task, pipeline, batch_size):
    return dict(
        batch_size=batch_size,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='ImageTextPairDataset',
            task=task,
            dataset_name=name,
            data_root=f'data/{name}/',
            ann_file='annotations/train.jsonl',
            data_prefix=dict(img_path=''),
            pipeline=pipeline))


pairs_caption_dataloaders_224 = {
    n: _loader(n, 'captioning', {{_base_.text_image_train_pipeline_224}}, 24)
    for n in pair_sources
}
pairs_caption_dataloaders_384 = {
    n: _loader(n, 'captioning', {{_base_.text_image_train_pipeline_384}}, 24)
    for n in pair_sources
}
pairs_retrieval_dataloaders_224 = {
    n: _loader(n, 'retrieval', {{_base_.text_image_train_pipeline_224}}, 28)
    for n in pair_sources
}
pairs_retrieval_dataloaders_384 = {
    n: _loader(n, 'retrieval', {{_base_.text_image_train_pipeline_384}}, 28)
    for n in pair_sources
}
