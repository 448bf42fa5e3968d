# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Draw the predictions of every test image, task by task (mmdet's
``DetVisualizationHook`` for a multi-task test; ``tools/test.py
--show-dir``)."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch.nn.functional as F
from mmengine.dist import collect_results, is_main_process
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmupv2.evaluation.metrics.retrieval_metric import retrieval_gallery
from mmupv2.registry import HOOKS

#: Texts drawn per retrieval image (the best of the whole gallery).
RETRIEVAL_LINES = 3
#: Tasks drawn as boxes and masks.
INSTANCE_TASKS = ('detection', 'instance_segmentation')


def loop_entry(loop) -> Tuple[str, Optional[str], dict]:
    """The data set a test loop is running: ``(name, task, metainfo)``.

    ``MultiTaskTestLoop``: its ``current`` entry; mmengine's ``TestLoop``:
    the data set's ``dataset_name`` (else its class name) and ``task``.
    """
    dataset = loop.dataloader.dataset
    metainfo = dict(getattr(dataset, 'metainfo', None) or {})
    name = getattr(loop, 'current', None)
    if name is not None:
        return name, loop.tasks.get(name), metainfo
    name = getattr(dataset, 'dataset_name', None) or type(dataset).__name__
    return name, getattr(dataset, 'task', None), metainfo


@HOOKS.register_module()
class TaskVisualizationHook(Hook):
    """Draw the predictions of every image of every test data set.

    Drawings go to ``{out_dir}/{data set name}/{image file name}``; a
    relative ``out_dir`` is taken under ``{work_dir}/{timestamp}/`` as in
    mmdet's ``DetVisualizationHook`` (``tools/test.py --show-dir``).

    ============================= ==========================================
    task                          drawing
    ============================= ==========================================
    detection / instance segm.    boxes, masks and class names of the
                                  instances scoring above ``score_thr``
                                  (mmdet's ``DetLocalVisualizer``)
    classification                the ``topk`` best classes and scores, then
                                  ``gt: <class>``
    captioning                    the caption, then ``gt: <first reference>``
    retrieval                     the 3 best texts of the *whole* test
                                  gallery with their cosine similarity;
                                  ``*`` marks the image's own texts
    ============================= ==========================================

    Other tasks (MLM has no images) are skipped. While a data set runs,
    every rank keeps what it will draw (text lines, the instances above the
    threshold with RLE masks, retrieval features); when the next data set
    starts (or the test ends) the ranks' shares are collected and rank 0
    draws them all -- mmengine's visualizers draw on rank 0 only, and
    mmdet's hook thus leaves out the other ranks' images.

    Args:
        out_dir: where the drawings go.
        score_thr: detection / segmentation score threshold (mmdet's 0.3).
        topk: classes drawn per classification image.
        backend_args: for reading the images (``mmengine.fileio.get``).

    Attributes:
        drawn (dict[str, int]): drawings written per data set (rank 0).
    """

    def __init__(self,
                 out_dir: str,
                 score_thr: float = 0.3,
                 topk: int = 3,
                 backend_args: Optional[dict] = None) -> None:
        self.out_dir = out_dir
        self.score_thr = score_thr
        self.topk = topk
        self.backend_args = backend_args
        self.drawn: Dict[str, int] = {}
        self._root: Optional[str] = None
        self._visualizer = None
        # the data set being run: (name, size, metainfo), one item per sample
        self._entry: Optional[Tuple[str, int, dict]] = None
        self._items: List[Optional[dict]] = []

    def before_test(self, runner) -> None:
        from mmdet.visualization import DetLocalVisualizer
        self._root = osp.join(runner.work_dir, runner.timestamp,
                              self.out_dir)
        visualizer = runner.visualizer
        if not isinstance(visualizer, DetLocalVisualizer):
            visualizer = DetLocalVisualizer(
                name=f'{type(self).__name__}-{id(self)}')
        self._visualizer = visualizer
        self.drawn = {}
        self._entry, self._items = None, []

    # ---------------------------------------------------- what to draw
    def _item(self, task: Optional[str], sample,
              classes: Optional[Sequence[str]]) -> Optional[dict]:
        """What to draw of one sample (small, picklable), or None."""
        from mmupv2.apis.drawing import topk_lines
        if 'img_path' not in sample:
            return None
        item = dict(img_path=sample.img_path, task=task)
        if task in INSTANCE_TASKS:
            instances = sample.pred_instances
            item['instances'] = instances[instances.scores > self.score_thr]
        elif task == 'classification':
            lines = topk_lines(sample.pred_score, classes, self.topk)
            if 'gt_label' in sample and len(sample.gt_label):
                label = int(sample.gt_label[0])
                names = list(classes or [])
                lines.append(
                    f'gt: {names[label] if label < len(names) else label}')
            item['lines'] = lines
        elif task == 'captioning':
            refs = sample.get('gt_caption')
            item['lines'] = [sample.pred_caption] + (
                [f'gt: {refs if isinstance(refs, str) else refs[0]}']
                if refs else [])
        elif task == 'retrieval':
            item.update(self._retrieval_item(sample))
        else:
            return None
        return item

    @staticmethod
    def _retrieval_item(sample) -> dict:
        refs = sample.get('gt_caption')
        texts = list(refs) if isinstance(refs, (list, tuple)) else (
            [sample.text] if isinstance(sample.get('text'), str) else [])
        text_feat = sample.text_feat.float()
        if len(texts) != len(text_feat):
            texts = [f'text {i}' for i in range(len(text_feat))]
        # the keys of ImageTextRetrievalMetric's results
        return dict(
            image_id=sample.metainfo.get('image_id', 0),
            image=sample.image_feat.float(),
            texts=text_feat,
            text=texts)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        name, entry_task, metainfo = loop_entry(runner.test_loop)
        if self._entry is None or self._entry[0] != name:
            self._flush()
            self._entry = (name, len(runner.test_loop.dataloader.dataset),
                           metainfo)
        for sample in outputs or ():
            sample = sample.cpu()
            task = sample.metainfo.get('task') or entry_task
            # one item per sample, so that the ranks' lists line up
            self._items.append(
                self._item(task, sample, metainfo.get('classes')))

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._flush()

    def after_test(self, runner) -> None:
        for name, count in self.drawn.items():
            print_log(
                f'{count} drawings of data set {name!r} in '
                f'{osp.join(self._root, name)}',
                logger='current')

    # ----------------------------------------------------------- drawing
    def _flush(self) -> None:
        """Collect the current data set's items of every rank; rank 0 draws
        them (every rank must call this at the same point)."""
        if self._entry is None:
            return
        (name, size, metainfo), items = self._entry, self._items
        self._entry, self._items = None, []
        items = collect_results(items, size, device='cpu')
        if not is_main_process():
            return
        items = [item for item in items if item is not None]
        retrieval = [item for item in items if item['task'] == 'retrieval']
        if retrieval:
            self._add_retrieval_lines(retrieval)
        for item in items:
            self._draw(name, item, metainfo)

    def _read_rgb(self, img_path: str) -> np.ndarray:
        img = mmcv.imfrombytes(
            get(img_path, backend_args=self.backend_args),
            channel_order='rgb')
        return np.ascontiguousarray(img)

    def _draw(self, name: str, item: dict, metainfo: dict) -> None:
        from mmdet.structures import DetDataSample

        from mmupv2.apis.drawing import draw_text_block, drawable_instances
        img_path = item['img_path']
        img = self._read_rgb(img_path)
        folder = osp.join(self._root, name)
        mkdir_or_exist(folder)
        out_file = osp.join(folder, osp.basename(img_path))
        if 'instances' in item:
            self._visualizer.dataset_meta = dict(
                classes=metainfo.get('classes'),
                palette=metainfo.get('palette'))
            sample = DetDataSample(pred_instances=item['instances'])
            self._visualizer.add_datasample(
                osp.basename(img_path),
                img,
                drawable_instances(sample, self.score_thr, img.shape[:2]),
                draw_gt=False,
                out_file=out_file,
                pred_score_thr=self.score_thr)
        else:
            drawing = draw_text_block(self._visualizer, img, item['lines'])
            mmcv.imwrite(drawing[..., ::-1], out_file)
        self.drawn[name] = self.drawn.get(name, 0) + 1

    @staticmethod
    def _add_retrieval_lines(items: List[dict]) -> None:
        """Set ``lines`` of every retrieval item: its best texts of the
        whole gallery (as the metric sees it)."""
        items, images, texts, owner = retrieval_gallery(items)
        all_texts = [t for r in items for t in r['text']]
        sim = F.normalize(images, dim=-1) @ F.normalize(texts,
                                                        dim=-1).t()  # (I, T)
        k = min(RETRIEVAL_LINES, sim.shape[1])
        for i, item in enumerate(items):
            values, indices = sim[i].topk(k)
            item['lines'] = [
                f'{"*" if int(owner[j]) == i else " "} {float(v):.2f} '
                f'{all_texts[j]}'
                for v, j in zip(values.tolist(), indices.tolist())
            ]
