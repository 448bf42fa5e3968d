# BookCorpus + English Wikipedia for masked language modelling: one UTF-8
# text file, one passage per line (data/books_wiki/train.txt); see
# docs/datasets.md. Batch 256 per GPU (paper Table 8).
mlm_pipeline = [dict(type='PackUPv2Inputs')]

books_wiki_train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='TextLinesDataset',
        dataset_name='books_wiki',
        data_root='data/books_wiki/',
        ann_file='train.txt',
        min_chars=16,
        pipeline=mlm_pipeline))

# the MultiTaskLoop entry (Table 8: s_k 0.05, w_k 0.5)
mlm_entries = dict(
    books_wiki=dict(
        sampling_ratio=0.05, loss_weight=0.5,
        dataloader=books_wiki_train_dataloader))
