# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The main job (``make demo``): train the generalist on the built-in
shapes benchmark, starting from pretrained encoders as the paper does, and
evaluate every task with the real metrics.

Steps:

1. generate ``data/shapes`` if it is missing (the Makefile does it first);
2. train ``configs/uniperceiver_v2/upv2_lite0-minilm_shapes.py``
   (ImageNet EfficientNet-Lite0 + MiniLM, both installed from PyPI) with
   unmixed sampling and MT-AdamW on classification, detection, instance
   segmentation, captioning, retrieval and MLM (progress and ETA in the log
   every 20 iterations), evaluating every task ``--curve-points`` times on
   the way;
3. evaluate every task on the val split (top-1, COCO bbox / segm mAP,
   BLEU-4 / CIDEr, R@1 both ways) and print one summary table;
4. write ``<work-dir>/metrics.json`` (every value on the paper's 0-100
   scale), ``<work-dir>/learning_curve.png`` (each metric against the
   iteration) and drawn predictions of a few val images to
   ``<work-dir>/vis/``.

    python tools/misc/demo.py [--config CONFIG] [--work-dir work_dirs/demo]
        [--max-iters N] [--curve-points 3] [--write docs/benchmark.md]

``--write`` records the reached values against the project's quality
floors, with each entry's number of training iterations, in the "Demo
quality" section of a markdown file, and copies the learning curve next to
it (``demo_learning_curve.png``).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Dict, List, Mapping

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                  'upv2_lite0-minilm_shapes.py')
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


#: the quality floors of the demo (issue "make demo"), same keys as SCHEMA
FLOORS = {
    'classification': {'top1': 90.0},
    'detection': {'bbox_mAP': 40.0},
    'instance_segmentation': {'segm_mAP': 30.0},
    'captioning': {'BLEU-4': None, 'CIDEr': 80.0},
    'retrieval': {'i2t_R@1': 40.0, 't2i_R@1': 40.0},
}
QUALITY_TITLE = 'Demo quality (make demo)'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='mmupv2 demo')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--max-iters', type=int, default=None,
        help='training iterations (default: the config\'s)')
    parser.add_argument('--seed', type=int, default=None,
                        help='random seed (default: the config\'s)')
    parser.add_argument('--num-vis', type=int, default=4,
                        help='val images to draw')
    parser.add_argument(
        '--curve-points', type=int, default=3,
        help='evaluations of every task during training, for the learning '
        'curve (0: none)')
    parser.add_argument(
        '--write', metavar='MARKDOWN',
        help=f'write the "{QUALITY_TITLE}" section of this file')
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


def iterations_per_entry(loop) -> Dict[str, int]:
    """How many iterations each entry of a ``MultiTaskLoop`` trained (its
    unmixed schedule is a pure function of the seed and the iteration)."""
    from mmupv2.engine.runner.task_schedule import unmixed_iterations
    entries = loop.entries
    if loop.sampling != 'unmixed':
        return {e.name: loop.max_iters for e in entries}
    counts = unmixed_iterations(loop._get_seed(), loop.max_iters,
                                [e.sampling_ratio for e in entries])
    return {e.name: n for e, n in zip(entries, counts)}


def quality_rows(summary: Mapping[str, dict],
                 iterations: Mapping[str, int]) -> List[list]:
    """Rows ``task, metric, floor, reached, met, training iterations``."""
    rows = []
    for task, fields in summary.items():
        for name, value in fields.items():
            floor = FLOORS.get(task, {}).get(name)
            met = '' if floor is None else ('yes' if value >= floor else
                                            'no')
            rows.append([
                task, name, '' if floor is None else f'{floor:g}',
                f'{value:.1f}', met,
                iterations.get(task, '')
            ])
    return rows


def curve_points(scalars_json: str) -> Dict[int, Dict[str, dict]]:
    """``{iteration: metrics.json-style document}`` of every evaluation
    that mmengine's logger wrote to ``vis_data/scalars.json`` (the val
    loop's ``'<entry>/<metric>'`` keys)."""
    points = {}
    with open(scalars_json) as f:
        for line in f:
            record = json.loads(line)
            try:
                points[int(record['step'])] = paper_scale_metrics(record)
            except KeyError:  # a training record
                continue
    return points


def draw_learning_curve(points: Mapping[int, Mapping[str, dict]],
                        out_file: str, title: str) -> None:
    """One panel per task: each metric against the iteration, the floor
    dashed. ``points``: ``{iteration: metrics.json-style document}``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    iters = sorted(points)
    fig, axes = plt.subplots(1, len(SCHEMA), figsize=(4 * len(SCHEMA), 3.4))
    for ax, (task, fields) in zip(axes, SCHEMA.items()):
        for name in fields:
            line, = ax.plot(iters, [points[i][task][name] for i in iters],
                            marker='o', label=name)
            floor = FLOORS.get(task, {}).get(name)
            if floor is not None:
                ax.axhline(floor, ls='--', lw=1, color=line.get_color())
        ax.set_title(task)
        ax.set_xlabel('iteration')
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=80)
    plt.close(fig)


def val_image_paths(loop, num_images: int) -> List[str]:
    """The first ``num_images`` image paths of a test loop's data: those of
    its detection entry, else of the first entry whose samples have an
    ``img_path`` (so the drawings follow the config's data, shapes or not).
    """
    from mmupv2.engine.runner.metrics_summary import loop_dataset_tasks
    loaders = getattr(loop, 'dataloaders', None) or {
        'test': loop.dataloader}
    tasks = loop_dataset_tasks(loop)
    names = sorted(loaders, key=lambda name: tasks.get(name) != 'detection')
    for name in names:
        dataset = loaders[name].dataset
        if len(dataset) and 'img_path' in dataset.get_data_info(0):
            return [
                dataset.get_data_info(i)['img_path']
                for i in range(min(num_images, len(dataset)))
            ]
    return []


def draw_predictions(cfg, checkpoint: str, images: List[str], out_dir: str,
                     num_instances: int = 3) -> None:
    """Draw detection, segmentation, classification and captioning
    predictions of ``images`` with the inferencer, into
    ``out_dir/<task>/``.

    Detection and segmentation draw the ``num_instances`` best-scoring
    instances of each image whatever their score: a short run's scores
    (objectness x class probability) are low, and a fixed threshold would
    draw nothing."""
    from mmupv2.apis import UniPerceiverInferencer
    inferencer = UniPerceiverInferencer(cfg, weights=checkpoint)
    os.makedirs(out_dir, exist_ok=True)
    for task, name in (('detect', 'detection'),
                       ('segment', 'instance_segmentation')):
        preds = getattr(inferencer, task)(images)
        for sample in preds:  # sorted by score
            sample.pred_instances = sample.pred_instances[:num_instances]
        inferencer.visualize(images, preds, task=name, out_dir=out_dir,
                             pred_score_thr=0.0)
    for task in ('classify', 'caption'):
        getattr(inferencer, task)(images, out_dir=out_dir)


def set_max_iters(cfg, max_iters=None) -> None:
    """``--max-iters``: train ``max_iters`` iterations (None: the
    config's), every iteration-based scheduler clamped to the run (as
    ``tools/train.py`` does, with a warning per changed scheduler)."""
    from mmupv2.engine.runner.entry_runs import cut_schedule
    from mmupv2.engine.runner.run_length import fit_schedulers_to_run
    if max_iters is not None:
        cut_schedule(cfg, max_iters)
    else:
        fit_schedulers_to_run(cfg)


def main() -> int:
    args = parse_args()
    from mmengine.config import Config

    from mmupv2.engine.runner.launch import build_runner
    from mmupv2.engine.runner.metrics_summary import (
        loop_dataset_tasks,
        metrics_to_rows,
        rows_to_table,
    )
    cfg = Config.fromfile(args.config)
    # the built-in data is generated on first use; another data set (a
    # config pointing elsewhere, docs/custom_dataset.md) must exist
    if (osp.normpath(cfg.get('data_root', DATA_ROOT)) == osp.normpath(
            DATA_ROOT) and not osp.exists(osp.join(DATA_ROOT, 'meta.json'))):
        from mmupv2.datasets.shapes import generate_shapes
        print(f'generating the shapes benchmark in {DATA_ROOT}')
        generate_shapes(DATA_ROOT)
    cfg.work_dir = args.work_dir
    set_max_iters(cfg, args.max_iters)
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=args.seed)
    max_iters = cfg.train_cfg.max_iters
    if args.curve_points > 0:
        # evaluations during training on the whole val split (a subset
        # would not do: COCO mAP counts the unseen images' objects as
        # missed, and retrieval among fewer candidates is easier)
        cfg.train_cfg.val_interval = max(1, max_iters //
                                         (args.curve_points + 1))
        cfg.train_cfg.val_begin = cfg.train_cfg.val_interval
        # logged at the iteration, not at "epoch 0"
        cfg.default_hooks.logger.log_metric_by_epoch = False
    else:
        cfg.train_cfg.val_interval = max_iters + 1
    start = time.time()
    runner = build_runner(cfg)
    runner.train()
    train_time = time.time() - start
    metrics = runner.test()
    rows = metrics_to_rows(metrics, loop_dataset_tasks(runner.test_loop))
    data_name = osp.basename(osp.normpath(cfg.get('data_root', DATA_ROOT)))
    print(rows_to_table(rows, title=f'mmupv2 demo: {data_name} val'))

    summary = paper_scale_metrics(metrics)
    os.makedirs(args.work_dir, exist_ok=True)
    path = osp.join(args.work_dir, 'metrics.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    print(f'metrics (0-100) written to {path}:\n'
          f'{json.dumps(summary, indent=2)}')
    points = curve_points(
        osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    points[max_iters] = summary
    curve_file = osp.join(args.work_dir, 'learning_curve.png')
    draw_learning_curve(
        points, curve_file,
        f'{osp.basename(args.config)}: val metrics (0-100) during '
        'training; dashed: the floors')
    print(f'learning curve: {curve_file} (iterations '
          f'{", ".join(map(str, sorted(points)))})')
    checkpoint = osp.join(args.work_dir,
                          f'iter_{cfg.train_cfg.max_iters}.pth')
    draw_predictions(cfg, checkpoint,
                     val_image_paths(runner.test_loop, args.num_vis),
                     osp.join(args.work_dir, 'vis'))
    total_time = time.time() - start
    print(f'drawn predictions in {osp.join(args.work_dir, "vis")}; '
          f'training took {train_time / 60:.1f} min, all '
          f'{total_time / 60:.1f} min')
    if args.write:
        from mmupv2.utils.benchmark_table import write_section
        loop = runner.train_loop
        write_section(
            args.write, QUALITY_TITLE,
            f'`{" ".join(["python tools/misc/demo.py"] + sys.argv[1:])}`: '
            f'`{osp.relpath(args.config, ROOT)}` trained for '
            f'{loop.max_iters} iterations ({loop.sampling} sampling) in '
            f'{train_time / 60:.1f} min, {total_time / 60:.1f} min with '
            f'evaluation and drawing; values on the {data_name} val split '
            '(0-100). "iterations": how many training iterations the '
            'entry of that task had.', [
                'task', 'metric', 'floor', 'reached', 'met',
                'iterations'
            ], quality_rows(summary, iterations_per_entry(loop)))
        print(f'"{QUALITY_TITLE}" written to {args.write}')
        docs_curve = osp.join(osp.dirname(args.write),
                              'demo_learning_curve.png')
        shutil.copyfile(curve_file, docs_curve)
        print(f'learning curve copied to {docs_curve}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
