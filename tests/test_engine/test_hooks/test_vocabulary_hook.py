# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""VocabularyFromDataHook: the ``vocabulary='data'`` subset from the
training data of a multi-task run."""
import json
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from transformers import AutoTokenizer

from mmupv2.engine.hooks import VocabularyFromDataHook
from mmupv2.models.tasks.vocabulary import VocabularyTargets
from mmupv2.models.text_encoders import text_boundary_ids

CAPTIONS = ['a red circle above a blue square', 'two green stars']
LINES = ['a yellow triangle', 'the big hexagon']


class VocabularyModel(BaseModel):
    """What the hook reads of ``UniPerceiverV2``: ``vocabulary``,
    ``text_encoder.tokenizer``, ``vocabulary_targets`` and
    ``set_vocabulary``."""

    def __init__(self, tokenizer, vocabulary: str = 'data') -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.text_encoder = SimpleNamespace(tokenizer=tokenizer)
        self.vocabulary_targets = VocabularyTargets(tokenizer, vocabulary)

    @property
    def vocabulary(self) -> str:
        return self.vocabulary_targets.mode

    def set_vocabulary(self, token_ids) -> None:
        self.vocabulary_targets.set(token_ids)

    def forward(self, inputs=None, data_samples=None, mode='tensor'):
        return dict(loss=self.linear.weight.sum())


@pytest.fixture
def tokenizer(shapes_root):
    return AutoTokenizer.from_pretrained(f'{shapes_root}/tokenizer')


@pytest.fixture
def data_files(tmp_path) -> dict:
    karpathy = dict(images=[
        dict(filename='0.png', imgid=0, split='train',
             sentences=[dict(raw=c, sentid=i)
                        for i, c in enumerate(CAPTIONS)]),
        dict(filename='1.png', imgid=1, split='val',
             sentences=[dict(raw='a purple unicorn', sentid=9)]),
    ])
    (tmp_path / 'karpathy.json').write_text(json.dumps(karpathy))
    (tmp_path / 'corpus.txt').write_text('\n'.join(LINES) + '\n')
    return dict(karpathy=str(tmp_path / 'karpathy.json'),
                text=str(tmp_path / 'corpus.txt'))


def train_dataloader(files: dict) -> dict:
    """MultiTaskLoop entries: captioning, MLM and a detection entry whose
    files do not exist (it has no vocabulary targets, so it is never
    built by the hook's config path)."""

    def loader(dataset):
        return dict(batch_size=1, num_workers=0,
                    sampler=dict(type='InfiniteSampler'),
                    collate_fn=dict(type='pseudo_collate'), dataset=dataset)

    return dict(
        caption=dict(dataloader=loader(
            dict(type='KarpathyCaptionDataset', ann_file=files['karpathy'],
                 split='train'))),
        mlm=dict(dataloader=loader(
            dict(type='TextLinesDataset', ann_file=files['text']))))


def expected_ids(tokenizer) -> list:
    ids = {
        i for t in CAPTIONS + LINES
        for i in tokenizer(t, add_special_tokens=False)['input_ids']
    }
    return sorted(ids | {text_boundary_ids(tokenizer)[1]})


def test_before_train_in_a_multi_task_run(tmp_path, tokenizer, data_files):
    model = VocabularyModel(tokenizer)
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / 'work'),
        train_dataloader=train_dataloader(data_files),
        train_cfg=dict(type='MultiTaskLoop', max_iters=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[
            dict(type='VocabularyFromDataHook',
                 cache_dir=str(tmp_path / 'cache'))
        ],
        default_scope='mmupv2')
    runner.train()
    assert model.vocabulary_targets.token_ids().tolist() == expected_ids(
        tokenizer)
    log = open(runner.log_dir + f'/{runner.timestamp}.log').read()
    assert f'{len(expected_ids(tokenizer))} vocabulary targets' in log
    assert str(tmp_path / 'cache') in log


def fake_runner(model, files, train_loop=None):
    """What the hook reads of a Runner in a test-only run: the model, the
    unbuilt train loop and the config."""
    cfg = dict(train_dataloader=train_dataloader(files))
    cfg['train_dataloader']['det'] = dict(dataloader=dict(
        dataset=dict(type='UPv2CocoDataset', ann_file='/nonexistent.json')))
    return SimpleNamespace(
        model=model, cfg=Config(cfg),
        _train_loop=train_loop or dict(type='MultiTaskLoop'),
        logger=MMLogger.get_instance('test_vocabulary_hook'))


def test_before_test_fills_only_an_empty_subset(tmp_path, tokenizer,
                                                data_files):
    hook = VocabularyFromDataHook(cache_dir=str(tmp_path / 'cache'))
    model = VocabularyModel(tokenizer)
    hook.before_test(fake_runner(model, data_files))
    assert model.vocabulary_targets.token_ids().tolist() == expected_ids(
        tokenizer)
    # a subset restored from a checkpoint is kept
    model.set_vocabulary([7])
    hook.before_val(fake_runner(model, data_files))
    assert len(model.vocabulary_targets) == 2


def test_full_vocabulary_model_is_left_alone(tmp_path, tokenizer,
                                             data_files):
    model = VocabularyModel(tokenizer, vocabulary='full')
    hook = VocabularyFromDataHook(cache_dir=str(tmp_path / 'cache'))
    hook.before_test(fake_runner(model, data_files))
    assert not (tmp_path / 'cache').exists()


def test_unwraps_ddp(tmp_path, tokenizer, data_files):
    """Under DDP (one gloo process) the module gets the subset rank 0
    broadcast."""
    from mmengine.model import MMDistributedDataParallel
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        model = VocabularyModel(tokenizer)
        wrapped = MMDistributedDataParallel(module=model)
        hook = VocabularyFromDataHook(cache_dir=str(tmp_path / 'cache'))
        hook.before_test(fake_runner(wrapped, data_files))
    finally:
        torch_dist.destroy_process_group()
    assert torch.equal(model.vocabulary_targets.token_ids(),
                       torch.tensor(expected_ids(tokenizer)))
