# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Turn a training checkpoint into a file to publish (mmdet's
``tools/model_converters/publish_model.py``)::

    python tools/model_converters/publish_model.py IN_FILE OUT_FILE
        [--save-keys meta state_dict] [--trust-checkpoint]

Keeps only ``meta`` and ``state_dict`` (``--save-keys``): the optimizer
state (MT-AdamW's moments double the file), the message hub, the
schedulers and the random states are dropped. ``meta`` is reduced to plain
data (numpy numbers become Python numbers; any other object is dropped with
a warning), so the published file loads with
``torch.load(path, weights_only=True)`` -- checked after writing. The first
8 hex digits of the file's SHA-256 are put into its name, as OpenMMLab's
model zoo does: ``OUT_FILE = upv2_tiny.pth`` writes
``upv2_tiny-1a2b3c4d.pth``. Prints the final path.

IN_FILE is read weights-only like every checkpoint in mmupv2
(``docs/checkpoints.md``); ``--trust-checkpoint`` reads a file that holds
other objects (it may run code from the file).
"""
import argparse
import hashlib
import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log

from mmupv2.utils import load_checkpoint
from mmupv2.utils.cli import add_trust_checkpoint

DEFAULT_SAVE_KEYS = ('meta', 'state_dict')
#: Python types torch's weights-only unpickler reads as they are.
_PLAIN = (str, bytes, int, float, bool, complex, type(None), torch.Tensor,
          torch.Size, torch.dtype, torch.device)
#: What :func:`plain_data` returns for an object it drops.
DROPPED = object()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Process a checkpoint to be published')
    parser.add_argument('in_file', help='input checkpoint filename')
    parser.add_argument('out_file', help='output checkpoint filename')
    parser.add_argument(
        '--save-keys',
        nargs='+',
        type=str,
        default=list(DEFAULT_SAVE_KEYS),
        help='keys to save in the published checkpoint')
    add_trust_checkpoint(parser, 'IN_FILE')
    return parser.parse_args(argv)


def plain_data(obj: Any, where: str = 'meta') -> Any:
    """``obj`` as data torch's weights-only loader reads: containers and
    tensors kept, numpy arrays / numbers as lists / Python numbers; any
    other object dropped (a warning names it).

    Returns:
        The converted object, or :data:`DROPPED` if ``obj`` itself is not
        plain data.
    """
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.dtype.kind in 'biufcUS':
        return obj.tolist()
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for key, value in obj.items():
            value = plain_data(value, f'{where}.{key}')
            if not isinstance(key, _PLAIN):
                _warn_dropped(f'{where}[{key!r}]', key)
            elif value is not DROPPED:
                out[key] = value
        return out
    if isinstance(obj, (list, tuple)):
        items = [plain_data(v, f'{where}[{i}]') for i, v in enumerate(obj)]
        items = [v for v in items if v is not DROPPED]
        return tuple(items) if isinstance(obj, tuple) else items
    _warn_dropped(where, obj)
    return DROPPED


def _warn_dropped(where: str, obj: Any) -> None:
    print_log(f'{where}: dropped a {type(obj).__name__} (not plain data: '
              'torch.load(weights_only=True) would refuse it)',
              logger='current', level=logging.WARNING)


def sha256_of(path: str) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def process_checkpoint(in_file: str,
                       out_file: str,
                       save_keys: Sequence[str] = DEFAULT_SAVE_KEYS,
                       trust: Optional[bool] = None) -> str:
    """Write the published checkpoint.

    Args:
        in_file: a training checkpoint (``iter_N.pth``, ``epoch_N.pth``).
        out_file: the name to publish under; ``-<sha256[:8]>`` is inserted
            before ``.pth``.
        save_keys: the top-level keys to keep.
        trust: read ``in_file`` with ``weights_only=False``.

    Returns:
        str: the path written.

    Raises:
        KeyError: ``in_file`` has no ``state_dict``, or a key of
            ``save_keys`` is not in it.
    """
    checkpoint = load_checkpoint(in_file, map_location='cpu', trust=trust)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        what = (f'keys: {sorted(map(str, checkpoint))[:10]}' if isinstance(
            checkpoint, dict) else f'a {type(checkpoint).__name__}')
        raise KeyError(f"{in_file}: not an mmengine checkpoint (no "
                       f"'state_dict'; {what})")
    missing = [k for k in save_keys if k not in checkpoint]
    if missing:
        raise KeyError(f'{in_file}: --save-keys {missing} not in the '
                       f'checkpoint (keys: {sorted(checkpoint)})')
    for key in [k for k in checkpoint if k not in save_keys]:
        print_log(
            f'Key `{key}` will be removed because it is not in save_keys. '
            'If you want to keep it, please set --save-keys.',
            logger='current')
        checkpoint.pop(key)
    checkpoint = {
        key: value if key == 'state_dict' else plain_data(value, key)
        for key, value in checkpoint.items()
    }
    checkpoint = {k: v for k, v in checkpoint.items() if v is not DROPPED}
    folder = osp.dirname(out_file)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp_file = out_file + '.tmp'
    torch.save(checkpoint, tmp_file)
    # the promise of a published file: readable without running code
    torch.load(tmp_file, map_location='cpu', weights_only=True)
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    final_file = f'{stem}-{sha256_of(tmp_file)[:8]}.pth'
    os.replace(tmp_file, final_file)
    print_log(
        f'The published model is saved at {final_file}.', logger='current')
    return final_file


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    process_checkpoint(args.in_file, args.out_file, args.save_keys,
                       trust=True if args.trust_checkpoint else None)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
