# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The main job (``make demo``): train the generalist from scratch on the
built-in shapes benchmark and evaluate every task with the real metrics.

Steps:

1. generate ``data/shapes`` if it is missing (the Makefile does it first);
2. train ``configs/uniperceiver_v2/upv2_tiny_shapes.py`` with unmixed
   sampling and MT-AdamW on classification, detection, instance
   segmentation, captioning, retrieval and MLM (progress and ETA in the log
   every 20 iterations);
3. evaluate every task on the val split (top-1, COCO bbox / segm mAP,
   BLEU-4 / CIDEr, R@1 both ways) and print one summary table;
4. write ``<work-dir>/metrics.json`` (every value on the paper's 0-100
   scale) and drawn predictions of a few val images to ``<work-dir>/vis/``.

    python tools/misc/demo.py [--work-dir work_dirs/demo] [--max-iters N]
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, Mapping

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2', 'upv2_tiny_shapes.py')
#: where the configs look for the benchmark (relative to the working
#: directory, the repository root under ``make demo``)
DATA_ROOT = 'data/shapes'

#: metrics.json key -> (entry of the test loop, metric key, scale to 0-100)
SCHEMA = {
    'classification': {
        'top1': ('classification', 'classification/top1', 1.0)
    },
    'detection': {
        'bbox_mAP': ('detection', 'detection/bbox_mAP', 100.0)
    },
    'instance_segmentation': {
        'segm_mAP': ('instance_segmentation',
                     'instance_segmentation/segm_mAP', 100.0)
    },
    'captioning': {
        'BLEU-4': ('captioning', 'captioning/BLEU-4', 1.0),
        'CIDEr': ('captioning', 'captioning/CIDEr', 1.0)
    },
    'retrieval': {
        'i2t_R@1': ('retrieval', 'retrieval/i2t_R@1', 1.0),
        't2i_R@1': ('retrieval', 'retrieval/t2i_R@1', 1.0)
    },
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='mmupv2 demo')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--max-iters', type=int, default=None,
        help='training iterations (default: the config\'s)')
    parser.add_argument('--num-vis', type=int, default=4,
                        help='val images to draw')
    return parser.parse_args()


def paper_scale_metrics(metrics: Mapping[str, float]) -> Dict[str, dict]:
    """The ``metrics.json`` document: :data:`SCHEMA` filled from the test
    loop's ``'<entry>/<metric>'`` keys, on the 0-100 scale.

    Raises:
        KeyError: a metric of the schema is missing (names the key).
    """
    out: Dict[str, dict] = {}
    for task, fields in SCHEMA.items():
        out[task] = {}
        for name, (entry, key, scale) in fields.items():
            full = f'{entry}/{key}'
            if full not in metrics:
                raise KeyError(f'metric {full!r} missing from the '
                               f'evaluation (have {sorted(metrics)})')
            out[task][name] = round(float(metrics[full]) * scale, 2)
    return out


def draw_predictions(cfg, checkpoint: str, out_dir: str,
                     num_images: int) -> None:
    """Draw detection, segmentation, classification and captioning
    predictions of the first val images with the inferencer."""
    from mmupv2.apis import UniPerceiverInferencer
    inferencer = UniPerceiverInferencer(cfg, weights=checkpoint)
    img_dir = osp.join(DATA_ROOT, 'images', 'val')
    images = [
        osp.join(img_dir, f) for f in sorted(os.listdir(img_dir))[:num_images]
    ]
    os.makedirs(out_dir, exist_ok=True)
    for task in ('detect', 'segment', 'classify', 'caption'):
        getattr(inferencer, task)(images, out_dir=out_dir)  # out_dir/<task>/


def main() -> int:
    args = parse_args()
    if not osp.exists(osp.join(DATA_ROOT, 'meta.json')):
        from mmupv2.datasets.shapes import generate_shapes
        print(f'generating the shapes benchmark in {DATA_ROOT}')
        generate_shapes(DATA_ROOT)

    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmupv2.engine.runner.metrics_summary import (
        loop_dataset_tasks,
        metrics_to_rows,
        rows_to_table,
    )
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    if args.max_iters is not None:
        cfg.train_cfg.max_iters = args.max_iters
        for scheduler in cfg.get('param_scheduler', []):
            scheduler.end = min(scheduler.get('end', args.max_iters),
                                args.max_iters)
            scheduler.begin = min(scheduler.get('begin', 0),
                                  args.max_iters - 1)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_time = time.time() - start
    metrics = runner.test()
    rows = metrics_to_rows(metrics, loop_dataset_tasks(runner.test_loop))
    print(rows_to_table(rows, title='mmupv2 demo: shapes val'))

    summary = paper_scale_metrics(metrics)
    os.makedirs(args.work_dir, exist_ok=True)
    path = osp.join(args.work_dir, 'metrics.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    print(f'metrics (0-100) written to {path}:\n'
          f'{json.dumps(summary, indent=2)}')
    checkpoint = osp.join(args.work_dir,
                          f'iter_{cfg.train_cfg.max_iters}.pth')
    draw_predictions(cfg, checkpoint, osp.join(args.work_dir, 'vis'),
                     args.num_vis)
    print(f'drawn predictions in {osp.join(args.work_dir, "vis")}; '
          f'training took {train_time / 60:.1f} min, all '
          f'{(time.time() - start) / 60:.1f} min')
    return 0


if __name__ == '__main__':
    sys.exit(main())
