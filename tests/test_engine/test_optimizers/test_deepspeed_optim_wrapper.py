# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""MultiTaskLoop and MT-AdamW under DeepSpeed ZeRO-1/2.

Two gloo processes train the toy model through ``MultiTaskLoop``'s train
step and :class:`MultiTaskDeepSpeedOptimWrapper`, and must end with the
weights of one process that holds the whole gradient of both ranks' data.

- Always: a stand-in for DeepSpeed written to its public API
  (``engine.backward(loss)``, ``engine.step()``, ``engine.optimizer`` a
  ZeRO optimizer whose ``optimizer`` is MT-AdamW, ``scaled_global_norm()``,
  ``loss_scale``), with ZeRO's two traps reproduced: each rank holds one
  flat fp32 partition per parameter group, and the inner optimizer's
  ``step()`` is called once per group with only that group visible.
- Where ``deepspeed`` is installed: the same with the real
  ``deepspeed.initialize`` on the CPU accelerator (``DS_ACCELERATOR=cpu``),
  ZeRO stages 1 and 2.

Flat partitions give every parameter a gradient (zero for a head the step
does not use), as FSDP's do; the single-process reference therefore fills
missing gradients with zeros, so that only the gradient norm and the
partitioning are compared.
"""
import contextlib
import io
import os
import types

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine._strategy.deepspeed import (
    DeepSpeedOptimWrapper,
    MMDeepSpeedEngineWrapper,
)

from mmupv2.engine.optimizers import MTAdamW, MultiTaskDeepSpeedOptimWrapper
from tests.test_engine.two_rank_toy import (
    BATCH,
    OPTIM,
    assert_weights_equal,
    free_port,
    param_groups,
    reference_weights,
    spawn,
    toy_model,
    train_plan,
)

LOSS_SCALE = 8.0
#: ZeRO clips before MT-AdamW steps (DeepSpeed's default clip is 1.0):
#: small enough that every step of the plan is clipped
CLIP = 0.05


class FakeZeroOptimizer:
    """DeepSpeedZeroOptimizer's public surface, stage 2 on fp32 weights.

    Per parameter group: a flat buffer of the group's parameters, padded
    to a multiple of the world size, of which this rank owns (and its
    inner optimizer updates) one contiguous partition.
    """

    def __init__(self, model: nn.Module, inner_cls, groups: list,
                 clip_grad: float) -> None:
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        self.clip_grad = clip_grad
        self.bit16_groups = [g['params'] for g in groups]
        self.partitions, fp32_groups = [], []
        for group in groups:
            flat = torch.cat([p.detach().reshape(-1)
                              for p in group['params']])
            size = -(-flat.numel() // self.world)
            flat = torch.cat([flat, flat.new_zeros(size * self.world -
                                                   flat.numel())])
            part = nn.Parameter(flat[self.rank * size:(self.rank + 1) *
                                     size].clone())
            self.partitions.append(part)
            fp32_groups.append(dict(group, params=[part]))
        self.optimizer = inner_cls(fp32_groups)
        self.averaged_gradients = [None] * len(groups)
        self.loss_scale = LOSS_SCALE

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def reduce_gradients(self) -> None:
        """Average the (loss-scaled) gradients over the ranks and keep
        this rank's partition of each group."""
        for i, params in enumerate(self.bit16_groups):
            flat = torch.cat([
                (p.grad if p.grad is not None else torch.zeros_like(p))
                .reshape(-1) for p in params
            ])
            dist.all_reduce(flat)
            flat /= self.world
            size = self.partitions[i].numel()
            flat = torch.cat([flat, flat.new_zeros(size * self.world -
                                                   flat.numel())])
            self.averaged_gradients[i] = flat[self.rank * size:(self.rank +
                                                                 1) * size]

    def scaled_global_norm(self) -> torch.Tensor:
        """The norm of the loss-scaled gradient, all groups and ranks."""
        sq = sum(float(g.double().square().sum())
                 for g in self.averaged_gradients)
        sq = torch.tensor(sq, dtype=torch.float64)
        dist.all_reduce(sq)
        return sq.sqrt()

    def step(self) -> None:
        """Unscale and clip (ZeRO's rule), then the inner step per group."""
        combined = self.loss_scale
        if self.clip_grad > 0:
            coef = (float(self.scaled_global_norm()) / self.loss_scale +
                    1e-6) / self.clip_grad
            combined *= max(coef, 1.0)
        groups = self.optimizer.param_groups
        for i, part in enumerate(self.partitions):
            part.grad = self.averaged_gradients[i] / combined
            self.optimizer.param_groups = [groups[i]]
            self.optimizer.step()  # one group at a time, as ZeRO does
            self.optimizer.param_groups = groups
            part.grad = None
        for part, params in zip(self.partitions, self.bit16_groups):
            gathered = [torch.empty_like(part) for _ in range(self.world)]
            dist.all_gather(gathered, part.detach())
            flat = torch.cat(gathered)
            offset = 0
            for p in params:
                p.data.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.averaged_gradients = [None] * len(self.averaged_gradients)


class FakeEngine(nn.Module):
    """DeepSpeedEngine's public surface used by mmengine and the loop."""

    def __init__(self, module: nn.Module, optimizer: FakeZeroOptimizer,
                 **settings) -> None:
        super().__init__()
        self.module = module
        self.optimizer = optimizer
        self.settings = dict(stage=2, clip=optimizer.clip_grad, gas=1)
        self.settings.update(settings)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        (loss * self.optimizer.loss_scale).backward()
        self.optimizer.reduce_gradients()
        self.module.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad()

    def zero_optimization_stage(self) -> int:
        return self.settings['stage']

    def gradient_clipping(self) -> float:
        return self.settings['clip']

    def gradient_accumulation_steps(self) -> int:
        return self.settings['gas']


def _train(engine, zero, rank: int, wrapper_cls) -> dict:
    """Run the plan through MultiTaskLoop's train step on DeepSpeed."""
    model = MMDeepSpeedEngineWrapper(model=engine, inputs_to_half=None)
    # as DeepSpeedStrategy.prepare: built on the config's optimizer, which
    # deepspeed.initialize then replaces with its ZeRO optimizer
    optim_wrapper = wrapper_cls(optimizer=zero.optimizer)
    optim_wrapper.optimizer = zero
    optim_wrapper.model = model
    train_plan(model, optim_wrapper, rank)
    return {k: v.detach().clone()
            for k, v in model.module.state_dict().items()}


#: the loop's wrapper with mmengine's step: no global norm handed in
NoNormWrapper = type('NoNormWrapper', (MultiTaskDeepSpeedOptimWrapper, ),
                     dict(step=DeepSpeedOptimWrapper.step))


def _fake_worker(rank: int, port: int, out) -> None:
    """The weights after the plan: with the wrapper, clipping or not, and
    with NoNormWrapper."""
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        for name, wrapper_cls, clip in (
                ('wrapper', MultiTaskDeepSpeedOptimWrapper, 0.0),
                ('clipped', MultiTaskDeepSpeedOptimWrapper, CLIP),
                ('no_norm', NoNormWrapper, 0.0)):
            model = toy_model()
            zero = FakeZeroOptimizer(
                model, lambda groups: MTAdamW(groups, **OPTIM),
                param_groups(model.named_parameters()), clip)
            out[(name, rank)] = _train(FakeEngine(model, zero), zero, rank,
                                       wrapper_cls)
    finally:
        dist.destroy_process_group()


def test_fake_zero_two_ranks_equal_one_process():
    """MT-AdamW through ZeRO's wrapper (set_task via .optimizer), each rank
    holding a partition, stepped one group at a time, gradients clipped by
    ZeRO or not: the weights of both ranks equal the single-process ones
    (unmixed and mixed iterations). Without the global norm handed in
    (mmengine's step) they do not."""
    ref = reference_weights()
    out = spawn(_fake_worker)
    for name in ('wrapper', 'clipped'):
        for rank in (0, 1):
            assert_weights_equal(out[(name, rank)], ref,
                                 what=f'{name} rank {rank}: ')
    wrong = out[('no_norm', 0)]
    assert max(float((wrong[k] - v).abs().max()) for k, v in ref.items()
               ) > 1e-4


def test_wrapper_api_and_refusals():
    """What the loop calls exists and does what DeepSpeed needs; the
    settings MT-AdamW cannot work with are refused at the first step."""
    model = toy_model()
    inner = MTAdamW(param_groups(model.named_parameters()))
    zero = types.SimpleNamespace(optimizer=inner, loss_scale=1.0,
                                 scaled_global_norm=lambda: 1.0)
    calls = []
    engine = types.SimpleNamespace(
        module=model, backward=lambda loss: calls.append('backward'),
        step=lambda: calls.append('step'))
    wrapper = MultiTaskDeepSpeedOptimWrapper(optimizer=inner)
    wrapper.optimizer = zero
    wrapper.model = MMDeepSpeedEngineWrapper(model=engine)
    loss = torch.ones(())
    assert wrapper.scale_loss(loss) is loss
    assert wrapper.should_update() is True
    with wrapper.optim_context(model):
        pass
    wrapper.backward(loss)
    wrapper.zero_grad()
    assert calls == ['backward']
    for settings, match in [
        (dict(stage=3), 'ZeRO stage 1 or 2.*got stage 3'),
        (dict(gas=2), 'gradient_accumulation_steps=2'),
    ]:
        full = dict(dict(stage=2, clip=0.0, gas=1), **settings)
        engine.zero_optimization_stage = lambda s=full: s['stage']
        engine.gradient_clipping = lambda s=full: s['clip']
        engine.gradient_accumulation_steps = lambda s=full: s['gas']
        wrapper._checked = False
        with pytest.raises((ValueError, NotImplementedError), match=match):
            wrapper.step()
    # stage 0 in fp32: MT-AdamW is the engine's optimizer, computes its norm
    plain = MultiTaskDeepSpeedOptimWrapper(optimizer=inner)
    plain.model = MMDeepSpeedEngineWrapper(model=engine)
    plain.step()
    assert calls[-1] == 'step'


def _deepspeed_worker(rank: int, port: int, out) -> None:
    """The weights after PLAN under ZeRO stages 1 and 2."""
    os.environ.update(DS_ACCELERATOR='cpu', MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE='2',
                      LOCAL_RANK=str(rank), LOCAL_SIZE='2')
    import deepspeed
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        # stage 1 with DeepSpeed's default clipping (1.0), stage 2 clipping
        # every step
        for stage, clip in ((1, None), (2, CLIP)):
            model = toy_model(torch.float32)
            config = dict(train_micro_batch_size_per_gpu=BATCH,
                          gradient_accumulation_steps=1,
                          zero_allow_untested_optimizer=True,
                          zero_optimization=dict(stage=stage),
                          steps_per_print=10**12)
            if clip is not None:
                config['gradient_clipping'] = clip
            opt = MTAdamW(param_groups(model.named_parameters()), **OPTIM)
            with contextlib.redirect_stdout(io.StringIO()):
                engine, zero, *_ = deepspeed.initialize(
                    model=model, optimizer=opt, config=config)
            assert type(zero).__name__ == 'DeepSpeedZeroOptimizer'
            assert zero.optimizer is opt
            out[(stage, rank)] = _train(engine, zero, rank,
                                        MultiTaskDeepSpeedOptimWrapper)
    finally:
        dist.destroy_process_group()


def test_real_deepspeed_two_ranks_equal_one_process():
    """The real DeepSpeed (CPU accelerator, gloo), ZeRO-1 and ZeRO-2 with
    fp32 master weights: the weights equal the single-process ones."""
    pytest.importorskip('deepspeed')
    ref = reference_weights(torch.float32)
    out = spawn(_deepspeed_worker)
    for stage in (1, 2):
        for rank in (0, 1):
            assert_weights_equal(out[(stage, rank)], ref,
                                 what=f'ZeRO-{stage} rank {rank}: ')


def _strategy_worker(rank: int, work_dir: str, out) -> None:
    """tools/train.py's runner with configs/_base_/strategies/deepspeed.py
    (ZeRO-2) on the toy config, one gloo process, fp32: both samplings."""
    os.environ.update(DS_ACCELERATOR='cpu', MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(free_port()), RANK='0',
                      WORLD_SIZE='1', LOCAL_RANK='0')
    import functools

    import mmengine._strategy.deepspeed as mmengine_deepspeed
    from mmengine.config import Config

    from mmupv2.engine.runner.launch import (
        build_runner,
        prepare_cpu_distributed,
    )

    # every DeepSpeedStrategy registers DeepSpeed's optimizers (mmengine
    # 0.10), which raises the second time in a process: two runners here,
    # one per process in real use
    mmengine_deepspeed.register_deepspeed_optimizers = functools.cache(
        mmengine_deepspeed.register_deepspeed_optimizers)
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))
    for sampling in ('unmixed', 'mixed'):
        cfg = Config.fromfile(
            os.path.join(root, 'tests', 'data', 'configs',
                         'toy_multitask.py'))
        cfg.merge_from_dict(Config.fromfile(os.path.join(
            root, 'configs', '_base_', 'strategies',
            'deepspeed.py')).to_dict())
        cfg.strategy.bf16 = dict(enabled=False)  # the toy model is fp32
        cfg.work_dir = os.path.join(work_dir, sampling)
        cfg.experiment_name = sampling
        cfg.launcher = 'pytorch'
        cfg.train_cfg.update(sampling=sampling, max_iters=3)
        cfg.default_hooks.checkpoint.interval = 3
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        prepare_cpu_distributed(cfg)
        runner = build_runner(cfg)
        runner.train()
        out[sampling] = (runner.iter,
                         type(runner.optim_wrapper).__name__,
                         type(runner.optim_wrapper.optimizer).__name__,
                         runner.optim_wrapper.optimizer.optimizer.param_groups
                         [0]['step'])
    dist.destroy_process_group()


def test_pinned_deepspeed_fits_mmengines_strategy():
    """mmengine 0.10's ``DeepSpeedStrategy`` registers DeepSpeed's one-bit
    optimizers from ``deepspeed.runtime.fp16.onebit``, which DeepSpeed
    0.19.7 removed: requirements/optional.txt pins a release that has it."""
    pytest.importorskip('deepspeed')
    import deepspeed
    from mmengine._strategy.deepspeed import register_deepspeed_optimizers
    try:
        names = register_deepspeed_optimizers()
    except ImportError as e:
        pytest.fail(f'deepspeed {deepspeed.__version__} does not fit '
                    f'mmengine\'s DeepSpeedStrategy ({e}); install the '
                    'version of requirements/optional.txt')
    assert 'OnebitAdam' in names


def test_real_deepspeed_strategy_trains_the_loop(tmp_path):
    """The whole path: FlexibleRunner, DeepSpeedStrategy from the base
    config, MultiTaskLoop unmixed and mixed, a checkpoint."""
    pytest.importorskip('deepspeed')
    import torch.multiprocessing as mp
    out = mp.get_context('spawn').Manager().dict()
    mp.spawn(_strategy_worker, args=(str(tmp_path), out), nprocs=1)
    for sampling in ('unmixed', 'mixed'):
        assert out[sampling] == (3, 'MultiTaskDeepSpeedOptimWrapper',
                                 'DeepSpeedZeroOptimizer', 3), sampling
        assert os.path.isdir(os.path.join(str(tmp_path), sampling,
                                          'iter_3.pth'))
