# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Make mmengine 0.10.7 load its own checkpoints under torch >= 2.6.

torch 2.6 changed ``torch.load``'s default to ``weights_only=True``. mmengine
0.10.7 calls ``torch.load(filename, map_location=...)`` without the argument,
so ``Runner(resume=True)`` and ``load_from`` fail on the checkpoints mmengine
itself writes (``UnpicklingError: Weights only load failed``).

**Choice: a loader that trusts local checkpoint files, not an allow-list.**
An mmengine checkpoint's ``message_hub`` holds ``HistoryBuffer`` objects
whose pickled state contains *bound methods* (``_statistics_methods``), which
pickle rebuilds through ``builtins.getattr``. Allow-listing ``getattr`` for
the weights-only unpickler would hand an attacker a gadget chain to arbitrary
code (``getattr`` reaches ``__subclasses__``, ``__globals__``, ...), so an
allow-list that makes resume work would only *look* safe. We therefore say
plainly what is trusted: a file on the local file system, which the user
named in ``--resume`` / ``load_from`` / ``init_cfg`` exactly as they name the
config (itself Python code that runs), is loaded with
``weights_only=False`` -- torch's behaviour before 2.6, for which mmengine was
written. Remote schemes (``http://``, ``s3://``, ``open-mmlab://`` ...) keep
torch's safe default.

Set ``MMUPV2_TRUST_LOCAL_CHECKPOINTS=0`` to keep ``weights_only=True`` for
local files too (plain state dicts still load; full training checkpoints
then cannot be resumed).
"""
import os
import os.path as osp
from typing import Any, Optional, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader

_ENV_SWITCH = 'MMUPV2_TRUST_LOCAL_CHECKPOINTS'


def trusts_local_checkpoints() -> bool:
    """Whether local checkpoints load with ``weights_only=False`` (the
    default; ``MMUPV2_TRUST_LOCAL_CHECKPOINTS=0`` turns it off)."""
    return os.environ.get(_ENV_SWITCH, '1').strip().lower() not in ('0',
                                                                   'false',
                                                                   'no')


def load_local_checkpoint(filename: str,
                          map_location: Optional[Union[str, Any]] = None
                          ) -> dict:
    """Load a checkpoint from the local file system.

    Drop-in replacement of mmengine's ``load_from_local`` (registered for the
    empty prefix, i.e. every plain path) that passes ``weights_only``
    explicitly; see the module docstring for why.

    Args:
        filename: path of the checkpoint; ``~`` is expanded.
        map_location: as in :func:`torch.load`.

    Returns:
        dict: the loaded checkpoint.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename} can not be found')
    return torch.load(
        filename,
        map_location=map_location,
        weights_only=not trusts_local_checkpoints())


def register_local_checkpoint_loader() -> None:
    """Install :func:`load_local_checkpoint` as mmengine's loader for local
    paths. Idempotent; called when :mod:`mmupv2` is imported."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
