# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Draw what each task's training pipeline feeds the model (mmdet's
``tools/analysis_tools/browse_dataset.py``, per entry of a multi-task
``train_dataloader``)::

    python tools/analysis_tools/browse_dataset.py CONFIG
        [--entry NAME ...] [--output-dir DIR] [--not-show]
        [--max-images N] [--show-interval S] [--cfg-options k=v ...]

For every entry (all by default) the first ``--max-images`` samples of its
data set go through its pipeline -- augmentation included, so a flipped
image shows flipped boxes -- and are drawn with the config's
``visualizer`` (mmdet's ``DetLocalVisualizer`` if it has none):

==========================  ==============================================
task                        drawn
==========================  ==============================================
detection, instance seg.    ``gt_instances``: boxes, class names, masks
classification              the label: ``label: <class name> (<index>)``
captioning, retrieval       the image with its caption(s) / text
mlm                         the text, on a blank canvas (the tokens are
                            masked later, in the model)
==========================  ==============================================

Pictures go to ``DIR/<entry>/<index>_<image name>`` (``<index>.png`` for
texts). Without ``--not-show`` each is also shown for ``--show-interval``
seconds (needs a display).
"""
import argparse
import copy
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence

import mmcv
import numpy as np
from mmdet.models.utils import mask2ndarray
from mmdet.structures.bbox import BaseBoxes
from mmdet.visualization import DetLocalVisualizer
from mmengine.config import Config, ConfigDict
from mmengine.registry import VISUALIZERS, DefaultScope, init_default_scope
from mmengine.visualization import Visualizer

from mmupv2.apis.drawing import draw_text_block
from mmupv2.registry import DATASETS
from mmupv2.structures import UPv2DataSample
from mmupv2.utils import register_all_modules

#: (H, W) of the blank canvas a text-only sample is written on.
TEXT_CANVAS = (256, 512)
TEXT_CANVAS_GREY = 48
INSTANCE_TASKS = ('detection', 'instance_segmentation')


@dataclass
class BrowsedSample:
    """One drawn sample.

    Attributes:
        entry: the entry of ``train_dataloader``.
        task: its task.
        index: the sample's index in the entry's data set.
        name: the picture's file name.
        image: (H, W, 3) RGB uint8, what the pipeline gives (None for a
            text-only sample).
        drawing: (H, W, 3) RGB uint8, the image with the annotations.
        data_sample: the packed sample.
    """
    entry: str
    task: str
    index: int
    name: str
    image: Optional[np.ndarray]
    drawing: np.ndarray
    data_sample: UPv2DataSample


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmupv2.utils.cli import add_cfg_options
    parser = argparse.ArgumentParser(description='Browse a dataset')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--entry', nargs='+', default=None,
        help='entries of train_dataloader to draw (default: all)')
    parser.add_argument(
        '--output-dir', default=None, type=str,
        help='If there is no display interface, you can save it')
    parser.add_argument('--not-show', default=False, action='store_true')
    parser.add_argument(
        '--max-images', type=int, default=20,
        help='samples drawn per entry (0: all)')
    parser.add_argument(
        '--show-interval', type=float, default=2,
        help='the interval of show (s)')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def train_datasets(cfg: Config) -> Dict[str, ConfigDict]:
    """``{entry: data set config}`` of ``train_dataloader``: the entries of
    a multi-task config, or ``{'train': ...}`` for a single loader."""
    loaders = cfg.train_dataloader
    if 'dataset' in loaders:
        return {'train': loaders.dataset}
    out = {}
    for name, entry in loaders.items():
        if not isinstance(entry, dict) or 'dataloader' not in entry:
            raise KeyError(f"train_dataloader['{name}'] has no 'dataloader'")
        out[name] = entry['dataloader']['dataset']
    return out


def build_visualizer(cfg: Config) -> Visualizer:
    """The config's ``visualizer`` (mmdet's ``DetLocalVisualizer`` in the
    paper configs), else a ``DetLocalVisualizer``."""
    if cfg.get('visualizer') is not None:
        vis_cfg = copy.deepcopy(cfg.visualizer)
        vis_cfg.pop('vis_backends', None)  # the pictures are saved here
        vis_cfg['name'] = 'browse_dataset'
        with DefaultScope.overwrite_default_scope('mmdet'):
            visualizer = VISUALIZERS.build(vis_cfg)
        if isinstance(visualizer, DetLocalVisualizer):
            return visualizer
    return DetLocalVisualizer.get_instance('browse_dataset_det')


def annotation_lines(sample: UPv2DataSample,
                     classes: Optional[Sequence[str]]) -> List[str]:
    """The text fields of a sample, as lines to write on it."""
    lines = []
    if 'gt_label' in sample:
        for label in sample.gt_label.tolist():
            name = classes[label] if classes and label < len(classes) \
                else 'class'
            lines.append(f'label: {name} ({label})')
    if isinstance(sample.get('text'), str):
        lines.append(sample.text)
    lines += list(sample.get('gt_caption') or [])
    return lines


def _drawable_instances(sample: UPv2DataSample) -> UPv2DataSample:
    """A copy whose ``gt_instances`` are what the visualizer draws: boxes
    as a tensor, masks as a (N, H, W) bool array."""
    sample = sample.clone()
    instances = sample.gt_instances
    if isinstance(instances.get('bboxes'), BaseBoxes):
        instances.bboxes = instances.bboxes.tensor
    if instances.get('masks') is not None:
        instances.masks = mask2ndarray(instances.masks).astype(bool)
    sample.gt_instances = instances
    return sample


def input_image(item: dict) -> Optional[np.ndarray]:
    """The (H, W, 3) RGB uint8 image of a pipeline output (its ``inputs``
    are (3, H, W) BGR), or None for a text-only sample."""
    if 'inputs' not in item:
        return None
    return np.ascontiguousarray(
        item['inputs'].permute(1, 2, 0).numpy()[..., ::-1])


def draw_item(visualizer: DetLocalVisualizer, item: dict,
              classes: Optional[Sequence[str]]) -> np.ndarray:
    """Draw one pipeline output (``inputs`` + ``data_samples``).

    Returns:
        np.ndarray: (H, W, 3) RGB uint8.
    """
    sample = item['data_samples']
    task = sample.metainfo.get('task')
    image = input_image(item)
    if image is None:
        image = np.full(TEXT_CANVAS + (3, ), TEXT_CANVAS_GREY, np.uint8)
    if task in INSTANCE_TASKS and 'gt_instances' in sample:
        visualizer.dataset_meta = dict(classes=classes)
        visualizer.add_datasample(
            'sample', image, _drawable_instances(sample), draw_gt=True,
            draw_pred=False, show=False)
        return visualizer.get_image()
    return draw_text_block(visualizer, image,
                           annotation_lines(sample, classes))


def browse(cfg: Config,
           entries: Optional[Sequence[str]] = None,
           max_images: int = 20,
           visualizer: Optional[Visualizer] = None
           ) -> Iterator[BrowsedSample]:
    """Draw the first ``max_images`` samples (0: all) of each entry.

    Raises:
        KeyError: an entry of ``entries`` is not in ``train_dataloader``.
    """
    register_all_modules(init_default_scope=False)
    datasets = train_datasets(cfg)
    unknown = [e for e in entries or () if e not in datasets]
    if unknown:
        raise KeyError(f'--entry {unknown}: not in the config\'s '
                       f'train_dataloader ({", ".join(datasets)})')
    visualizer = visualizer or build_visualizer(cfg)
    for entry in entries or list(datasets):
        dataset = DATASETS.build(copy.deepcopy(datasets[entry]))
        task = getattr(dataset, 'task', None)
        classes = dataset.metainfo.get('classes')
        count = len(dataset) if max_images <= 0 else min(
            max_images, len(dataset))
        for index in range(count):
            item = dataset[index]
            sample = item['data_samples']
            path = sample.metainfo.get('img_path')
            name = (f'{index:05d}_{osp.basename(path)}'
                    if path else f'{index:05d}.png')
            yield BrowsedSample(entry, task or sample.metainfo.get('task'),
                                index, name, input_image(item),
                                draw_item(visualizer, item, classes), sample)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmupv2'))

    visualizer = build_visualizer(cfg)
    datasets = train_datasets(cfg)
    entries = args.entry or list(datasets)
    for entry in entries:
        count, task = 0, None
        for drawn in browse(cfg, [entry], args.max_images, visualizer):
            task = drawn.task
            if args.output_dir is not None:
                mmcv.imwrite(drawn.drawing[..., ::-1],
                             osp.join(args.output_dir, entry, drawn.name))
            if not args.not_show:
                visualizer.show(drawn.drawing, win_name=drawn.name,
                                wait_time=args.show_interval)
            count += 1
        where = (f' -> {osp.join(args.output_dir, entry)}'
                 if args.output_dir is not None else '')
        print(f'{entry} ({task}): {count} samples drawn{where}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
