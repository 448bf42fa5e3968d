# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Measure task interference: cosine similarity of the tasks' gradients.

This answers the users' question about task interference (issue #17 of the
official Uni-Perceiver repository): do the tasks of a generalist model pull
its shared weights in the same direction or against each other?

For every entry of the config's multi-task ``train_dataloader`` (a data set
of a task, as trained by ``MultiTaskLoop``) the gradient of its loss with
respect to the *shared* parameters -- the parameters that get a gradient from
at least two entries; task-specific heads are left out -- is averaged over
``--num-batches`` batches. The pairwise cosine similarities of these
gradients are printed as a table and written to ``OUT_DIR/interference.json``
and ``OUT_DIR/interference.png`` (a heat map). See
:mod:`mmupv2.utils.task_gradients` for the computation.

    python tools/analysis_tools/task_interference.py CONFIG [CHECKPOINT] \
        [--num-batches 4] [--out-dir work_dirs/interference] \
        [--cfg-options key=value ...]

Without a checkpoint the model is analysed at its initialisation (the
``init_cfg`` weights after ``init_weights()``).
"""
import argparse
import itertools
import json
import math
import os
import os.path as osp
from typing import Dict, Iterator, List

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, set_random_seed
from terminaltables import AsciiTable
from torch.utils.data import DataLoader

from mmupv2.registry import MODELS
from mmupv2.utils import load_model_checkpoint
from mmupv2.utils.task_gradients import (
    cosine_matrix,
    per_task_gradients,
    shared_gradients,
)


def parse_args() -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(
        description='Pairwise cosine similarity of the tasks\' gradients on '
        'the shared parameters (task interference).')
    parser.add_argument('config', help='config with a multi-task '
                        'train_dataloader ({entry: dict(dataloader=...)})')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint to analyse (default: the model at '
                        'initialisation)')
    parser.add_argument('--num-batches', type=int, default=4,
                        help='batches per entry to average the gradient over')
    parser.add_argument('--out-dir', default='work_dirs/task_interference',
                        help='where interference.json / .png are written')
    parser.add_argument('--device', default=None,
                        help="model device (default: 'cuda' if available)")
    add_cfg_options(parser)
    args = parser.parse_args()
    if args.num_batches < 1:
        parser.error('--num-batches must be >= 1')
    return args


def build_loaders(cfg: Config) -> Dict[str, DataLoader]:
    """One data loader per entry of the multi-task ``train_dataloader``."""
    entries = cfg.get('train_dataloader')
    if not isinstance(entries, dict) or not entries or not all(
            isinstance(e, dict) and 'dataloader' in e
            for e in entries.values()):
        raise ValueError(
            'task_interference: the config\'s train_dataloader must be the '
            'multi-task dict {entry name: dict(dataloader=..., '
            'sampling_ratio=..., loss_weight=...)} of MultiTaskLoop')
    seed = cfg.get('randomness', {}).get('seed')
    return {
        name: Runner.build_dataloader(entry['dataloader'], seed=seed)
        for name, entry in entries.items()
    }


def take(loader: DataLoader, num: int) -> Iterator[dict]:
    """``num`` batches of ``loader``, restarting it when it runs out."""
    count = 0
    while count < num:
        empty = True
        for batch in itertools.islice(loader, num - count):
            empty = False
            count += 1
            yield batch
        if empty:
            raise ValueError('task_interference: a data loader is empty')


def format_table(names: List[str], cos: torch.Tensor) -> str:
    rows = [['cos'] + names]
    for name, row in zip(names, cos.tolist()):
        rows.append([name] + [
            'n/a' if math.isnan(v) else f'{v:+.3f}' for v in row])
    return AsciiTable(rows).table


def plot_heatmap(names: List[str], cos: torch.Tensor, path: str,
                 title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    k = len(names)
    size = 1.2 + 0.9 * k
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(cos.numpy(), cmap='RdBu_r', vmin=-1, vmax=1)
    ax.set_xticks(range(k), labels=names, rotation=45, ha='right')
    ax.set_yticks(range(k), labels=names)
    for i in range(k):
        for j in range(k):
            v = float(cos[i, j])
            ax.text(j, i, 'n/a' if math.isnan(v) else f'{v:.2f}',
                    ha='center', va='center',
                    color='white' if abs(v) > 0.6 else 'black')
    fig.colorbar(image, ax=ax, label='cosine similarity')
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmupv2'))
    os.makedirs(args.out_dir, exist_ok=True)
    # mmengine's logs (weight initialisation, checkpoint loading) go to a
    # file in the output folder, as the Runner's do
    MMLogger.get_instance(
        'task_interference',
        log_file=osp.join(args.out_dir, 'task_interference.log'),
        log_level=cfg.get('log_level', 'INFO'))
    seed = cfg.get('randomness', {}).get('seed')
    if seed is not None:
        set_random_seed(seed)

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        # weights-only, every key checked (docs/checkpoints.md)
        load_model_checkpoint(model, args.checkpoint)
    elif hasattr(model, 'init_weights'):
        model.init_weights()
    model.to(device)

    loaders = build_loaders(cfg)
    per_task = per_task_gradients(
        model,
        {name: take(loader, args.num_batches)
         for name, loader in loaders.items()})
    shared, grads = shared_gradients(per_task)
    names, cos = cosine_matrix(grads)
    grad_norms = {n: float(g.double().norm()) for n, g in grads.items()}
    num_shared = next(iter(grads.values())).numel()

    print(f'{len(shared)} shared parameter tensors ({num_shared} elements), '
          f'gradients averaged over {args.num_batches} batch(es) per entry')
    print(format_table(names, cos))

    json_path = osp.join(args.out_dir, 'interference.json')
    png_path = osp.join(args.out_dir, 'interference.png')
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        num_batches=args.num_batches,
        tasks=names,
        entry_tasks={n: getattr(loaders[n].dataset, 'task', None)
                     for n in names},
        cosine=[[None if math.isnan(v) else v for v in row]
                for row in cos.tolist()],
        grad_norms=grad_norms,
        num_shared_elements=num_shared,
        shared_parameters=shared)
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=2)
    plot_heatmap(names, cos, png_path,
                 f'task gradient cosine ({args.num_batches} batches)')
    print(f'wrote {json_path} and {png_path}')


if __name__ == '__main__':
    main()
