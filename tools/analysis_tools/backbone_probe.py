# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""How much can the image backbone of a config learn in a given number of
iterations? An upper bound for the classification of a multi-task run.

The config's ``model.image_encoder.backbone`` is trained from scratch with a
linear head on its global-average-pooled last stage, on the config's
classification training data only (the ``classification`` entry of
``train_dataloader``; its dataset and batch size), with AdamW and a one-cycle
schedule; top-1 on the ``classification`` val loader is printed every
``--eval-interval`` iterations (with elapsed time and ETA). ``--variant``
compares backbone settings in the same run, e.g. the stem::

    python tools/analysis_tools/backbone_probe.py \
        configs/uniperceiver_v2/upv2_tiny_shapes.py --iters 700 \
        --variant 'deep_stem=False' --variant 'deep_stem=True' \
        --write docs/benchmark.md

A multi-task run gives classification only its share ``s_k`` of the
iterations, through a text decoder instead of a linear head; if the backbone
alone stays far below a quality floor in the whole budget, the floor is out
of reach for the full model too (the demo's note in docs/benchmark.md).
"""
import argparse
import ast
import copy
import time
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from mmupv2.registry import DATASETS, MODELS
from mmupv2.utils.benchmark_table import write_section

TITLE = 'Backbone probe: classification from scratch'


def parse_variant(text: str) -> Dict:
    """``'deep_stem=True,base_channels=32'`` -> backbone overrides."""
    overrides = {}
    for item in filter(None, (s.strip() for s in text.split(','))):
        if '=' not in item:
            raise ValueError(f'--variant {text!r}: expected key=value items')
        key, value = item.split('=', 1)
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as err:
            raise ValueError(f'--variant {text!r}: bad value for '
                             f'{key.strip()!r}: {value!r}') from err
    return overrides


class LinearProbe(nn.Module):
    """backbone -> last stage (B, C, h, w) -> mean over h, w -> linear."""

    def __init__(self, backbone: nn.Module, num_classes: int,
                 img_size: int = 64) -> None:
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():
            channels = backbone(torch.zeros(1, 3, img_size,
                                            img_size))[-1].shape[1]
        self.head = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.head(self.backbone(images)[-1].mean((2, 3)))


def _batch(preprocessor: nn.Module, dataset, indices: List[int],
           training: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    data = preprocessor(pseudo_collate([dataset[i] for i in indices]),
                        training)
    labels = torch.cat([s.gt_label[:1] for s in data['data_samples']])
    return data['inputs'], labels


@torch.no_grad()
def top1(probe: LinearProbe, preprocessor: nn.Module, dataset,
         batch_size: int = 50) -> float:
    """Top-1 (%) of ``probe`` on the whole ``dataset``."""
    probe.eval()
    correct = 0
    for start in range(0, len(dataset), batch_size):
        images, labels = _batch(
            preprocessor, dataset,
            list(range(start, min(start + batch_size, len(dataset)))), False)
        correct += int((probe(images).argmax(-1) == labels).sum())
    probe.train()
    return 100.0 * correct / len(dataset)


def run_probe(cfg: Config, overrides: Dict, iters: int, eval_interval: int,
              lr: float, seed: int = 0,
              log=print) -> List[Tuple[int, float, float]]:
    """Train one backbone variant; returns ``(iteration, train loss of the
    last interval, val top-1)`` every ``eval_interval`` iterations."""
    torch.manual_seed(seed)
    entry = cfg.train_dataloader['classification']
    train_set = DATASETS.build(entry['dataloader']['dataset'])
    val_set = DATASETS.build(cfg.val_dataloader['classification']['dataset'])
    batch_size = entry['dataloader']['batch_size']
    backbone_cfg = copy.deepcopy(cfg.model.image_encoder.backbone)
    backbone_cfg.pop('init_cfg', None)  # from scratch, whatever the config
    backbone_cfg.update(overrides)
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    probe = LinearProbe(backbone, len(train_set.metainfo['classes']))
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr,
                                  weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=iters, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    rows, losses, start = [], [], time.time()
    for it in range(1, iters + 1):
        indices = torch.randint(len(train_set), (batch_size, ),
                                generator=generator).tolist()
        images, labels = _batch(preprocessor, train_set, indices, True)
        loss = F.cross_entropy(probe(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if it % eval_interval == 0 or it == iters:
            acc = top1(probe, preprocessor, val_set)
            window = losses[-eval_interval:]
            rows.append((it, sum(window) / len(window), acc))
            elapsed = time.time() - start
            eta = elapsed / it * (iters - it)
            log(f'[{it}/{iters}] loss {rows[-1][1]:.3f} val top-1 '
                f'{acc:.1f}  elapsed {elapsed:.0f}s eta {eta:.0f}s')
    return rows


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=700)
    parser.add_argument('--eval-interval', type=int, default=100)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument(
        '--variant', action='append', default=None,
        help="backbone overrides 'key=value[,key=value]' (repeatable); "
        'default: the config as it is')
    parser.add_argument('--write', metavar='MARKDOWN',
                        help=f'write the "{TITLE}" section of this file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, list]:
    args = parse_args(argv)
    if args.iters < 1 or args.eval_interval < 1:
        raise SystemExit('--iters and --eval-interval must be >= 1')
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmupv2'))
    for loader in ('train_dataloader', 'val_dataloader'):
        if 'classification' not in cfg.get(loader, {}):
            raise SystemExit(f'{args.config}: {loader} has no '
                             "'classification' entry to probe with")
    variants = args.variant or ['']
    results = {}
    for text in variants:
        name = text or 'config'
        print(f'== {name}')
        results[name] = run_probe(cfg, parse_variant(text), args.iters,
                                  args.eval_interval, args.lr)
    if args.write:
        header = ['backbone'] + [f'top-1 @{it}' for it, _, _ in
                                 next(iter(results.values()))]
        rows = [[f'`{name}`'] + [f'{acc:.1f}' for _, _, acc in r]
                for name, r in results.items()]
        batch = cfg.train_dataloader['classification']['dataloader'][
            'batch_size']
        write_section(
            args.write, TITLE,
            f'`python tools/analysis_tools/backbone_probe.py {args.config}'
            f' --iters {args.iters} --eval-interval {args.eval_interval}'
            f' --lr {args.lr}' +
            ''.join(f" --variant '{v}'" for v in args.variant or []) +
            '`: the config\'s backbone from scratch + a linear head on its '
            'pooled last stage, trained on classification alone (batch '
            f'{batch}, AdamW, one-cycle lr); val top-1 (%) by iteration.',
            header, rows)
    return results


if __name__ == '__main__':
    main()
