# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Task interference: ``mmupv2.utils.task_gradients`` and the
``tools/analysis_tools/task_interference.py`` script."""
import itertools
import json
import math
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmupv2.registry import MODELS
from mmupv2.utils.task_gradients import (
    cosine_matrix,
    per_task_gradients,
    shared_gradients,
    task_gradients,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'toy_multitask.py')
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'task_interference.py')


class SignedModel(BaseModel):
    """A shared vector ``w`` and one private scalar per task.

    The loss of task ``t`` on inputs ``x`` (B, 3) is
    ``SIGNS[t] * (w * x).sum() + private[t] ** 2``, so the gradient of task
    ``t`` on ``w`` is ``SIGNS[t] * x.sum(0)``: tasks 'up' and 'twice' point
    the same way, 'down' exactly the opposite way.
    """
    SIGNS = {'up': 1.0, 'down': -1.0, 'twice': 2.0}

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
        self.private = nn.ParameterDict(
            {t: nn.Parameter(torch.ones(())) for t in self.SIGNS})
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)

    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[List[str]] = None,
                mode: str = 'tensor') -> Dict[str, torch.Tensor]:
        task = data_samples[0]
        loss = self.SIGNS[task] * (self.w * self.frozen * inputs).sum()
        return {f'{task}.loss': loss + self.private[task]**2}


def signed_batches(task: str, num: int, seed: int = 0) -> List[dict]:
    gen = torch.Generator().manual_seed(seed)
    return [dict(inputs=torch.randn(2, 3, generator=gen),
                 data_samples=[task, task]) for _ in range(num)]


def test_known_answer_opposite_and_identical():
    model = SignedModel()
    grads = task_gradients(model, {
        'up': signed_batches('up', 2),
        'down': signed_batches('down', 2),
        'twice': signed_batches('twice', 2)
    })
    # only `w` is shared; the private scalars and the frozen vector are not
    assert {n: g.shape for n, g in grads.items()} == {
        'up': (3, ), 'down': (3, ), 'twice': (3, )}
    names, cos = cosine_matrix(grads)
    assert names == ['up', 'down', 'twice']
    expected = torch.tensor([[1., -1., 1.], [-1., 1., -1.], [1., -1., 1.]],
                            dtype=torch.float64)
    torch.testing.assert_close(cos, expected, atol=1e-12, rtol=0)
    # the averaged gradient is the mean of the batches' gradients
    mean_x = torch.stack(
        [b['inputs'].sum(0) for b in signed_batches('up', 2)]).mean(0)
    torch.testing.assert_close(grads['up'], mean_x)
    torch.testing.assert_close(grads['twice'], 2 * mean_x)


def test_restores_grads_and_mode_and_zero_gradient_is_nan():
    model = SignedModel().eval()
    marker = torch.full((3, ), 7.0)
    model.w.grad = marker.clone()
    per_task = per_task_gradients(model, {
        'up': signed_batches('up', 1),
        'down': signed_batches('down', 1)
    })
    assert not model.training
    assert torch.equal(model.w.grad, marker)
    assert model.private['up'].grad is None
    assert set(per_task['up']) == {'w', 'private.up'}
    names, grads = shared_gradients(per_task)
    assert names == ['w']
    grads['zero'] = torch.zeros(3)
    _, cos = cosine_matrix(grads, chunk_size=2)  # several chunks
    assert cos[0, 1] == pytest.approx(-1.0)
    assert torch.isnan(cos[2]).all() and torch.isnan(cos[:, 2]).all()


def test_clear_errors():
    model = SignedModel()
    with pytest.raises(ValueError, match='at least two tasks'):
        task_gradients(model, {'up': signed_batches('up', 1)})
    with pytest.raises(ValueError, match="task 'down' has no batch"):
        task_gradients(model, {'up': signed_batches('up', 1), 'down': []})
    with pytest.raises(ValueError, match='nothing is shared'):
        shared_gradients({'a': {'x': torch.ones(1)},
                          'b': {'y': torch.ones(1)}})
    with pytest.raises(ValueError, match='lengths differ'):
        cosine_matrix({'a': torch.ones(2), 'b': torch.ones(3)})


def test_toy_config_matrix():
    cfg = Config.fromfile(TOY_CFG)
    init_default_scope('mmupv2')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    batches = {
        name: list(itertools.islice(
            Runner.build_dataloader(entry['dataloader'], seed=0), 2))
        for name, entry in cfg.train_dataloader.items()
    }
    per_task = per_task_gradients(model, batches)
    shared, grads = shared_gradients(per_task)
    # the trunk is shared by all entries, the classification head by the two
    # classification entries; the retrieval head by one entry only
    assert shared == ['trunk.0.weight', 'trunk.0.bias',
                      'heads.classification.weight',
                      'heads.classification.bias']
    names, cos = cosine_matrix(grads)
    assert names == ['cls_a', 'cls_b', 'ret']
    assert cos.shape == (3, 3)
    torch.testing.assert_close(cos, cos.T, atol=0, rtol=0)
    torch.testing.assert_close(cos.diagonal(), torch.ones(3, dtype=cos.dtype))
    assert torch.isfinite(cos).all() and (cos.abs() <= 1).all()


def test_script_end_to_end(tmp_path):
    cfg = Config.fromfile(TOY_CFG)
    init_default_scope('mmupv2')
    torch.manual_seed(1)
    ckpt = tmp_path / 'toy.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()},
               str(ckpt))
    out = tmp_path / 'out'
    proc = subprocess.run([
        sys.executable, SCRIPT, TOY_CFG, str(ckpt), '--num-batches', '2',
        '--out-dir', str(out), '--device', 'cpu', '--cfg-options',
        'randomness.seed=3'
    ], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'cls_a' in proc.stdout and '+1.000' in proc.stdout
    result = json.loads((out / 'interference.json').read_text())
    assert result['tasks'] == ['cls_a', 'cls_b', 'ret']
    assert result['entry_tasks']['ret'] == 'retrieval'
    assert result['num_batches'] == 2
    assert result['num_shared_elements'] == 8 * 16 + 16 + 3 * 16 + 3
    cos = result['cosine']
    for i in range(3):
        assert cos[i][i] == pytest.approx(1.0)
        for j in range(3):
            assert cos[i][j] == pytest.approx(cos[j][i])
            assert -1 <= cos[i][j] <= 1 and not math.isnan(cos[i][j])
    png = (out / 'interference.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 1000
