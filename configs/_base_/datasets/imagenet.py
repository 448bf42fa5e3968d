# ImageNet-1k classification
# (data/imagenet: train/, val/, meta/{train,val}.txt)
_base_ = ['./pipelines.py']
imagenet_root = 'data/imagenet/'


def _loader(split, pipeline, batch_size, train):
    return dict(
        batch_size=batch_size,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='InfiniteSampler', shuffle=True) if train else
        dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='UPv2ImageNetDataset',
            data_root=imagenet_root,
            ann_file=f'meta/{split}.txt',
            data_prefix=split,
            dataset_name='imagenet',
            pipeline=pipeline))


imagenet_train_dataloader_224 = _loader(
    'train', {{_base_.cls_train_pipeline_224}}, 28, True)
imagenet_train_dataloader_384 = _loader(
    'train', {{_base_.cls_train_pipeline_384}}, 28, True)
imagenet_val_dataloader_224 = _loader(
    'val', {{_base_.cls_test_pipeline_224}}, 64, False)
imagenet_val_dataloader_384 = _loader(
    'val', {{_base_.cls_test_pipeline_384}}, 64, False)
imagenet_val_evaluator = dict(
    type='mmpretrain.Accuracy', topk=(1, 5), prefix='classification')
