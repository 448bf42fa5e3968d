# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Saves the random generators in checkpoints and restores them on resume,
so that a resumed run is bitwise the uninterrupted one."""
import logging
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop

from mmupv2.registry import HOOKS
from mmupv2.utils.random_state import (
    RandomState,
    get_random_state,
    set_random_state,
)

#: The checkpoint key of the saved states.
CHECKPOINT_KEY = 'random_state'


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Checkpoint the random generators of every rank; restore them on
    resume; keep validation from moving them.

    ::

        after_train_iter (a checkpoint is due, >1 process):
            every rank's state -> all_gather_object -> held on every rank
        before_save_checkpoint:
            checkpoint['random_state'] = dict(
                iter=meta['iter'],
                ranks=[rank 0's state, rank 1's, ...])
        after_load_checkpoint:    hold checkpoint['random_state']
        before_train:             if the train loop starts at the held
                                  ``iter`` (a resume, not ``load_from``):
                                  this rank's state -> the generators
        before_val / after_val:   capture / put back (validation during
                                  training draws nothing from the stream
                                  training uses)

    A state (:func:`~mmupv2.utils.random_state.get_random_state`) holds
    torch's CPU generator, the current CUDA device's (the MoE gate noise on
    a GPU), numpy's, Python's, and under ``loaders`` the own ``generator``
    of each train data loader that has one (by entry name for
    ``MultiTaskLoop``). All are tensors, tuples and numbers: the checkpoint
    loads with ``torch.load(weights_only=True)``.

    What else a bitwise resume needs is the loop's: the task schedule is a
    function of (seed, iteration), each entry's ``InfiniteSampler`` is
    advanced past the batches it gave, and starting a loader's iterator
    draws nothing from the global generators (see
    :class:`~mmupv2.engine.runner.MultiTaskDataloaders`).
    ``MultiTaskLoop`` registers this hook when the config does not.

    Limits: a resume on another number of processes keeps the freshly
    seeded generators (with a warning); so does a checkpoint without
    ``random_state``. Data loader *worker processes* (``num_workers > 0``)
    hold their own generators (seeded by mmengine's ``worker_init_fn``)
    that are not saved: with workers, random augmentations after a resume
    differ from the uninterrupted run's. The shapes configs load in the
    main process (``num_workers=0``).

    The priority (``'LOW'``) puts ``after_train_iter`` before
    ``CheckpointHook``'s (``'VERY_LOW'``).
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._gathered: Optional[tuple] = None  # (runner.iter, states)
        self._loaded: Optional[dict] = None
        self._val_state: Optional[RandomState] = None

    # -- what a rank holds ---------------------------------------------
    @staticmethod
    def _loader_generators(runner) -> Dict[str, torch.Generator]:
        """The train data loaders' own generators, by entry name."""
        loop = runner._train_loop  # the property would build a config
        if not isinstance(loop, BaseLoop):
            return {}
        loader = loop.dataloader
        entries = getattr(loader, 'entries', None)
        named = {e.name: e.dataloader for e in entries} if entries else {
            'train': loader}
        return {
            name: dl.generator
            for name, dl in named.items()
            if isinstance(getattr(dl, 'generator', None), torch.Generator)
        }

    def _local_state(self, runner) -> RandomState:
        state = get_random_state()
        state['loaders'] = {
            name: g.get_state()
            for name, g in self._loader_generators(runner).items()
        }
        return state

    @staticmethod
    def _checkpoint_due(runner) -> bool:
        """Whether a ``CheckpointHook`` saves after this iteration."""
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and (
                    hook.every_n_train_iters(runner, hook.interval,
                                             hook.save_begin) or
                (hook.save_last and hook.is_last_train_iter(runner))):
                return True
        return False

    # -- saving ----------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Gather every rank's state when a checkpoint follows (only rank 0
        runs ``before_save_checkpoint``)."""
        if get_world_size() > 1 and self._checkpoint_due(runner):
            self._gathered = (runner.iter,
                              all_gather_object(self._local_state(runner)))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Put ``random_state`` into the checkpoint."""
        world_size = get_world_size()
        if self._gathered is not None and self._gathered[0] == runner.iter:
            ranks: List[RandomState] = self._gathered[1]
        else:
            ranks = [self._local_state(runner)]
            if world_size > 1:
                print_log(
                    'RandomStateHook: a checkpoint outside CheckpointHook\'s '
                    'iteration schedule holds only rank 0\'s random state; '
                    'resuming from it will not be bitwise',
                    logger='current', level=logging.WARNING)
        checkpoint[CHECKPOINT_KEY] = dict(
            iter=int(checkpoint.get('meta', {}).get('iter', runner.iter)),
            ranks=ranks)

    # -- resuming --------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Hold the checkpoint's states until training starts."""
        self._loaded = dict(state=checkpoint.get(CHECKPOINT_KEY))

    def before_train(self, runner) -> None:
        """On resume, restore this rank's generators."""
        loaded, self._loaded = self._loaded, None
        if loaded is None or runner.iter == 0:
            return  # a fresh run, or load_from (weights only)
        saved = loaded['state']
        if saved is None:
            print_log(
                f'RandomStateHook: the checkpoint resumed at iteration '
                f'{runner.iter} has no `{CHECKPOINT_KEY}`; the generators '
                'keep their fresh seeds (not bitwise the uninterrupted run)',
                logger='current', level=logging.WARNING)
            return
        if int(saved['iter']) != runner.iter:
            return
        ranks = saved['ranks']
        world_size = get_world_size()
        if len(ranks) != world_size:
            print_log(
                f'RandomStateHook: the checkpoint holds the random state of '
                f'{len(ranks)} process(es), this run has {world_size}; the '
                'generators keep their fresh seeds', logger='current',
                level=logging.WARNING)
            return
        state = ranks[get_rank()]
        set_random_state(state)
        generators = self._loader_generators(runner)
        for name, g_state in state.get('loaders', {}).items():
            if name in generators:
                generators[name].set_state(g_state)
        print_log(
            f'RandomStateHook: random state of iteration {runner.iter} '
            'restored', logger='current')

    # -- validation during training ------------------------------------
    def before_val(self, runner) -> None:
        self._val_state = get_random_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_random_state(self._val_state)
            self._val_state = None
