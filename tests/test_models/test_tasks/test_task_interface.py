# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The model-task interface: the heads use the model only through
:class:`TaskModel`, the heads and the model do not import each other, and
the proposal losses are asked for, never inferred from the samples."""
import ast
import inspect
from pathlib import Path

import pytest
import torch

import mmupv2.models.tasks as tasks_package
from mmupv2.models import UniPerceiverV2
from mmupv2.models.tasks import TaskModel

TASKS_DIR = Path(tasks_package.__file__).parent


def _modules():
    return sorted(TASKS_DIR.glob('*.py'))


def _imported_names(tree: ast.AST):
    """Every module an ``import`` / ``from ... import`` names, TYPE_CHECKING
    blocks included, with the imported names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ''
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize('path', _modules(), ids=lambda p: p.name)
def test_task_modules_do_not_import_the_model(path):
    """No module of ``mmupv2/models/tasks`` (``base.py`` first of all)
    imports ``uniperceiver_v2``, not even for type checking."""
    names = set(_imported_names(ast.parse(path.read_text())))
    assert not any('uniperceiver_v2' in n or n == 'UniPerceiverV2'
                   for n in names), (path.name, sorted(names))


def _interface_members():
    return {
        name
        for name in dir(TaskModel) if not name.startswith('_')
    } | set(TaskModel.__annotations__)


def _model_attributes(tree: ast.AST):
    """``name`` of every ``model.name`` / ``self.model.name``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id == 'model':
            yield node.attr
        elif (isinstance(value, ast.Attribute) and value.attr == 'model'
              and isinstance(value.value, ast.Name)
              and value.value.id == 'self'):
            yield node.attr


def test_heads_use_only_the_interface():
    members = _interface_members()
    used = {
        (path.name, attr)
        for path in _modules()
        for attr in _model_attributes(ast.parse(path.read_text()))
    }
    assert {attr for _, attr in used} >= {'encode_image', 'decode',
                                          'encode_targets'}
    outside = sorted((name, attr) for name, attr in used
                     if attr not in members)
    assert not outside, f'heads reach past TaskModel: {outside}'


def test_the_model_implements_the_interface(tiny_model):
    assert isinstance(tiny_model, TaskModel)
    for name in _interface_members():
        member = getattr(TaskModel, name, None)
        if inspect.isfunction(member):  # same keyword arguments
            want = inspect.signature(member).parameters
            got = inspect.signature(getattr(UniPerceiverV2,
                                            name)).parameters
            assert list(got) == list(want), name


@pytest.mark.parametrize('task', ['classification', 'captioning',
                                  'retrieval', 'detection'])
def test_proposal_losses_only_for_localization(task, tiny_model, images,
                                               samples):
    """Every test batch carries ``gt_instances`` with boxes; only the
    localization tasks ask the image encoder for its proposal losses
    (Appendix A), whatever the samples hold."""
    batch = samples(task)
    assert all('bboxes' in s.gt_instances for s in batch)
    tiny_model.train()
    seen = []
    handle = tiny_model.image_encoder.register_forward_hook(
        lambda module, args, kwargs, out: seen.append((kwargs, out)),
        with_kwargs=True)
    try:
        losses = tiny_model(images, batch, mode='loss')
    finally:
        handle.remove()
    (kwargs, out), = seen
    proposal_keys = {k for k in losses if '.proposal.' in k}
    if task == 'detection':
        assert kwargs == dict(with_loss=True)
        assert proposal_keys and out.matched_indices is not None
    else:
        assert kwargs == dict(with_loss=False)
        assert not proposal_keys
        assert out.losses == {} and out.matched_indices is None
    assert all(torch.isfinite(v) for v in losses.values())


def test_retrieval_texts_take_the_target_path_per_batch(
        tiny_model, images, samples, monkeypatch):
    """Retrieval encodes its texts with ``encode_targets`` (no copy of it)
    as texts of the batch: never cached, never checkpointed; class names
    are both."""
    from mmupv2.models import uniperceiver_v2
    calls = []
    monkeypatch.setattr(tiny_model, 'encode_targets',
                        lambda *a, **k: calls.append(k) or type(
                            tiny_model).encode_targets(tiny_model, *a, **k))
    checkpointed = []
    checkpoint = uniperceiver_v2.checkpoint
    monkeypatch.setattr(
        uniperceiver_v2, 'checkpoint',
        lambda fn, *a, **k: checkpointed.append(a[-1]) or checkpoint(
            fn, *a, **k))
    tiny_model.checkpoint_targets = True
    tiny_model.train()
    tiny_model(images, samples('retrieval'), mode='loss')
    assert calls == [dict(per_batch=True)] and checkpointed == []
    tiny_model(images, samples('classification'), mode='loss')
    assert checkpointed == ['text_target']
    tiny_model.eval()
    with torch.no_grad():
        tiny_model(images, samples('retrieval'), mode='predict')
    assert len(tiny_model.target_cache) == 0

