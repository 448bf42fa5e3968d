# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""What ``tools/train.py`` and ``tools/test.py`` share: building the runner
named by ``runner_type``, running distributed jobs on CPU-only machines and
ending them cleanly.
"""
import contextlib
import copy
import datetime
import os
from typing import Any, Dict, Iterator, Mapping, Union

import torch
import torch.distributed as torch_dist
from mmengine._strategy import BaseStrategy
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import FlexibleRunner, Runner
from mmengine.runner.utils import _get_batch_size
from torch.nn.parallel import DistributedDataParallel

from mmupv2.engine.optimizers.optimizer_type import check_optimizer_type
from mmupv2.registry import RUNNERS
from mmupv2.utils.checkpoint import safe_checkpoint_loading

from .runner import WeightsOnlyLoadingMixin

CPU_LAUNCHERS = ('pytorch', )


def is_multi_task_loader_cfg(cfg: Any) -> bool:
    """Whether ``cfg`` is ``MultiTaskLoop``'s ``train_dataloader``:
    ``{entry name: dict(dataloader=..., ...)}``."""
    return (isinstance(cfg, Mapping) and bool(cfg)
            and 'dataset' not in cfg and all(
                isinstance(v, Mapping) and 'dataloader' in v
                for v in cfg.values()))


def train_micro_batch_size(train_dataloader: Any) -> int:
    """The per-GPU batch size a strategy is told about.

    For ``MultiTaskLoop`` (a dict of entries, or its built
    ``MultiTaskDataloaders``) it is the largest batch size of the entries;
    otherwise mmengine's ``_get_batch_size``.

    Raises:
        ValueError: an entry's loader has no ``batch_size``.
    """
    entries = getattr(train_dataloader, 'entries', None)
    if entries is not None:
        return max(_get_batch_size(e.dataloader) for e in entries)
    if is_multi_task_loader_cfg(train_dataloader):
        sizes = []
        for name, entry in train_dataloader.items():
            try:
                sizes.append(_get_batch_size(entry['dataloader']))
            except ValueError as e:
                raise ValueError(
                    f"train_dataloader['{name}'].dataloader: {e}") from e
        return max(sizes)
    return _get_batch_size(train_dataloader)


class MultiTaskFlexibleRunner(WeightsOnlyLoadingMixin, FlexibleRunner):
    """mmengine's ``FlexibleRunner`` that accepts ``MultiTaskLoop`` and reads
    checkpoints weights-only.

    ``FlexibleRunner`` reads one batch size from ``train_dataloader`` (for
    DeepSpeed's ``train_micro_batch_size_per_gpu``), which fails on the dict
    of entries of :class:`~mmupv2.engine.runner.MultiTaskLoop`. This runner
    uses :func:`train_micro_batch_size` instead (the largest entry's).
    ``load_from``, ``resume`` and, in training, the ``Pretrained`` files of
    the model's ``init_cfg`` are read by mmupv2's weights-only loader, as in
    :class:`~mmupv2.engine.runner.runner.UPv2Runner`. :func:`build_runner`
    builds it for ``runner_type='FlexibleRunner'``.
    """

    def build_strategy(self,
                       strategy: Union[BaseStrategy, Dict, None] = None,
                       **kwargs) -> BaseStrategy:
        """``FlexibleRunner.build_strategy``, shown the largest entry's batch
        size when ``train_dataloader`` is ``MultiTaskLoop``'s dict."""
        loaders = self._train_dataloader
        if is_multi_task_loader_cfg(loaders):
            # FlexibleRunner.build_strategy reads only the batch size
            self._train_dataloader = dict(
                batch_size=train_micro_batch_size(loaders))
        try:
            return super().build_strategy(strategy, **kwargs)
        finally:
            self._train_dataloader = loaders

    def train(self) -> torch.nn.Module:
        """Launch training: ``FlexibleRunner.train`` with the batch size read
        by :func:`train_micro_batch_size`."""
        if self._train_loop is None:
            raise RuntimeError(
                '`self._train_loop` should not be None when calling train '
                'method. Please provide `train_dataloader`, `train_cfg`, '
                '`optimizer` and `param_scheduler` arguments when '
                'initializing runner.')
        self._train_loop = self.build_train_loop(self._train_loop)
        if self._val_loop is not None:
            self._val_loop = self.build_val_loop(self._val_loop)
        compile: Union[dict, bool] = False
        if isinstance(self._compile, bool):
            if self._compile:
                compile = dict(target='train_step')
        else:
            compile = copy.copy(self._compile)
            compile.setdefault('target', 'train_step')
        dispatch_kwargs = dict(
            epoch_length=len(self.train_dataloader),
            max_epochs=self.max_epochs,
            max_iters=self.max_iters,
            train_micro_batch_size_per_gpu=train_micro_batch_size(
                self.train_dataloader))
        # the strategy initialises the weights (Pretrained files)
        with safe_checkpoint_loading():
            self.strategy.prepare(
                self.model,
                optim_wrapper=self.optim_wrapper,
                param_scheduler=self.param_schedulers,
                compile=compile,
                dispatch_kwargs=dispatch_kwargs)
        self.model = self.strategy.model
        self.optim_wrapper = self.strategy.optim_wrapper
        if self.param_schedulers is not None:
            self.param_schedulers = self.strategy.param_schedulers
        self.load_or_resume()
        self.call_hook('before_run')
        model = self.train_loop.run()
        self.call_hook('after_run')
        return model


def build_runner(cfg: Config) -> Union[Runner, FlexibleRunner]:
    """Build the runner a config asks for, as mmdet's tools do.

    - no ``runner_type``: mmengine's ``Runner``;
    - ``runner_type='UPv2Runner'`` (every mmupv2 config's):
      :class:`~mmupv2.engine.runner.runner.UPv2Runner`, mmengine's Runner
      with weights-only checkpoint reads;
    - ``runner_type='FlexibleRunner'``: :class:`MultiTaskFlexibleRunner`
      (``FlexibleRunner`` + ``MultiTaskLoop``), with the config's
      ``strategy`` (FSDP, DeepSpeed, ...);
    - any other name: built from mmupv2's ``RUNNERS`` registry.

    An unregistered ``optim_wrapper.optimizer.type`` raises first
    (:func:`~mmupv2.engine.optimizers.check_optimizer_type`).
    """
    # before any data or model is built (mmengine would fail much later,
    # with "None is not a callable object")
    check_optimizer_type(cfg.get('optim_wrapper'), cfg.get('default_scope'))
    runner_type = cfg.get('runner_type')
    if runner_type is None:
        return Runner.from_cfg(cfg)
    if runner_type == 'FlexibleRunner':
        return MultiTaskFlexibleRunner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def _strategy_type(strategy: Mapping) -> str:
    kind = strategy.get('type', '')
    return kind if isinstance(kind, str) else kind.__name__


def _cpu_ddp_wrapper(wrapper: Any, cfg: Config) -> ConfigDict:
    """A DDP wrapper config for CPU modules (``device_ids=None``).

    A wrapper that is not a ``DistributedDataParallel`` (or a type mmengine's
    registry does not know without a scope) is returned unchanged.
    """
    wrapper = ConfigDict(wrapper or dict(broadcast_buffers=False))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_cls = MODEL_WRAPPERS.get(wrapper['type']) if isinstance(
        wrapper['type'], str) else wrapper['type']
    if isinstance(wrapper_cls, type) and issubclass(
            wrapper_cls, DistributedDataParallel):
        wrapper.setdefault('device_ids', None)
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
    return wrapper


def prepare_cpu_distributed(cfg: Config) -> bool:
    """Let a distributed job run on a machine without CUDA (gloo, CPU).

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its data
    parallel wrappers get ``device_ids=[LOCAL_RANK]``; both fail without a
    GPU. When ``cfg.launcher`` is not ``'none'`` and CUDA is unavailable,
    this function

    - starts the default process group itself from the torchrun variables
      (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) with
      ``env_cfg.dist_cfg`` (the Runner then skips ``init_dist``);
    - sets ``model_wrapper_cfg`` (``Runner``) or ``strategy.model_wrapper``
      (``FlexibleRunner``'s DDP / FSDP strategies) to wrap CPU modules:
      ``device_ids=None`` for DDP, ``device_id='cpu'`` for FSDP, unless the
      config sets them. ``find_unused_parameters`` is passed on from the
      config, as mmengine does.

    With CUDA, or with ``launcher='none'``, it does nothing.

    Args:
        cfg: the full config; changed in place.

    Returns:
        bool: whether CPU distributed settings were applied.

    Raises:
        RuntimeError: a launcher other than ``'pytorch'`` on a CPU machine.
        ValueError: ``env_cfg.dist_cfg.backend`` is not ``'gloo'``.
    """
    launcher = cfg.get('launcher', 'none') or 'none'
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher not in CPU_LAUNCHERS:
        raise RuntimeError(
            f'launcher={launcher!r} needs CUDA devices (mmengine gives each '
            'process one); on a CPU-only machine start the processes with '
            "torchrun (tools/dist_train.sh) and --launcher pytorch")
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg: Dict[str, Any] = dict(env_cfg.get('dist_cfg') or {})
    backend = dist_cfg.pop('backend', 'nccl')
    if backend != 'gloo':
        raise ValueError(
            f'env_cfg.dist_cfg.backend={backend!r} needs CUDA; on a CPU-only '
            "machine use 'gloo' (--cfg-options env_cfg.dist_cfg.backend=gloo)")
    if not torch_dist.is_initialized():
        timeout = dist_cfg.pop('timeout', None)
        if timeout is not None:
            dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
        torch_dist.init_process_group(backend='gloo', **dist_cfg)
    os.environ.setdefault('LOCAL_RANK', '0')

    if cfg.get('runner_type') == 'FlexibleRunner':
        strategy = cfg.get('strategy') or ConfigDict(type='DDPStrategy')
        kind = _strategy_type(strategy)
        if kind == 'DDPStrategy':
            strategy['model_wrapper'] = _cpu_ddp_wrapper(
                strategy.get('model_wrapper'), cfg)
        elif kind == 'FSDPStrategy':
            wrapper = strategy.get('model_wrapper') or ConfigDict(
                type='MMFullyShardedDataParallel')
            wrapper.setdefault('device_id', 'cpu')
            strategy['model_wrapper'] = wrapper
        cfg.strategy = strategy
    else:
        cfg.model_wrapper_cfg = _cpu_ddp_wrapper(
            cfg.get('model_wrapper_cfg'), cfg)
    return True



def destroy_process_group(barrier: bool = True) -> None:
    """End the default process group, if one was started.

    Without it the group is torn down by the interpreter's exit, while the
    backend's threads (gloo's) may still run, and a rank can abort with
    ``terminate called without an active exception`` (SIGABRT) after the
    job's work is done. With ``barrier`` every rank first waits for the
    others to finish, so none tears its connections down under a rank that
    still talks to it.

    Args:
        barrier: wait for every rank first. Pass ``False`` on an error: the
            other ranks may never reach the barrier.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    try:
        if barrier:
            torch_dist.barrier()
    finally:
        torch_dist.destroy_process_group()


@contextlib.contextmanager
def process_group_teardown() -> Iterator[None]:
    """Run a tool's ``main()`` and end the process group after it.

    On success :func:`destroy_process_group` with a barrier; on an error
    (any exception, ``KeyboardInterrupt`` included) without one, and the
    error propagates. Does nothing when no process group was started.
    """
    try:
        yield
    except BaseException:
        # the error that ended main() is the one to report
        with contextlib.suppress(Exception):
            destroy_process_group(barrier=False)
        raise
    destroy_process_group(barrier=True)
