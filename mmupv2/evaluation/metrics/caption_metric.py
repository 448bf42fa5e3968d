# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Caption metrics (BLEU, METEOR, ROUGE-L, CIDEr) with pycocoevalcap, offline.

mmpretrain's ``COCOCaption`` runs ``COCOEvalCap.evaluate()``, which always
includes SPICE, and SPICE downloads Stanford CoreNLP models on first use: it
fails on machines without internet. This metric calls pycocoevalcap's
scorers directly (the same code, the same PTB tokenisation, which needs
``java``), leaves SPICE out unless asked for, and reports on the paper's
0-100 scale.
"""
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmupv2.registry import METRICS

_SCORERS = ('BLEU', 'METEOR', 'ROUGE_L', 'CIDEr', 'SPICE')


def _build_scorer(name: str):
    if name == 'BLEU':
        from pycocoevalcap.bleu.bleu import Bleu
        return Bleu(4)
    if name == 'METEOR':
        from pycocoevalcap.meteor.meteor import Meteor
        return Meteor()
    if name == 'ROUGE_L':
        from pycocoevalcap.rouge.rouge import Rouge
        return Rouge()
    if name == 'CIDEr':
        from pycocoevalcap.cider.cider import Cider
        return Cider()
    from pycocoevalcap.spice.spice import Spice
    return Spice()


def caption_scores(predictions: Dict[int, str],
                   references: Dict[int, List[str]],
                   scorers: Sequence[str] = ('BLEU', 'CIDEr')
                   ) -> Dict[str, float]:
    """Score captions as the COCO caption evaluation server does.

    Args:
        predictions: ``{image id: generated caption}``.
        references: ``{image id: [reference captions]}``; must cover every
            id of ``predictions``.
        scorers: any of ``'BLEU'`` (gives BLEU-1..4), ``'METEOR'``,
            ``'ROUGE_L'``, ``'CIDEr'``, ``'SPICE'`` (needs internet once).

    Returns:
        dict: metric name -> score in [0, 100].
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    unknown = set(scorers) - set(_SCORERS)
    if unknown:
        raise ValueError(f'unknown caption scorers {sorted(unknown)}; '
                         f'choose from {_SCORERS}')
    missing = set(predictions) - set(references)
    if missing:
        raise KeyError(f'no reference captions for image ids '
                       f'{sorted(missing)[:10]}')
    tokenizer = PTBTokenizer()
    res = tokenizer.tokenize({
        i: [dict(caption=c)] for i, c in predictions.items()
    })
    gts = tokenizer.tokenize({
        i: [dict(caption=c) for c in references[i]] for i in predictions
    })
    metrics = {}
    for name in scorers:
        score, _ = _build_scorer(name).compute_score(gts, res)
        if name == 'BLEU':
            for n, value in enumerate(score, 1):
                metrics[f'BLEU-{n}'] = float(value) * 100
        else:
            metrics[name] = float(score) * 100
    return metrics


@METRICS.register_module()
class CaptionMetric(BaseMetric):
    """BLEU-1..4 / METEOR / ROUGE-L / CIDEr of generated captions (0-100).

    Reads ``pred_caption`` and the references ``gt_caption`` (all captions
    of the image, as the test split of ``KarpathyCaptionDataset`` gives
    them) of every data sample, keyed by ``image_id``; with ``ann_file``
    (a COCO-caption JSON such as ``captions_val2014.json``) the references
    come from that file instead, as on the COCO server.

    Args:
        scorers: which scores to compute (see :func:`caption_scores`);
            default BLEU and CIDEr, the paper's.
        ann_file: optional COCO-caption ground truth.
        collect_device / prefix: as in mmengine's ``BaseMetric``.
    """
    default_prefix: Optional[str] = 'caption'

    def __init__(self,
                 scorers: Sequence[str] = ('BLEU', 'CIDEr'),
                 ann_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.scorers = tuple(scorers)
        self.ann_file = ann_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_caption' not in sample:
                raise KeyError('CaptionMetric: a data sample has no '
                               "'pred_caption'")
            self.results.append(
                dict(image_id=sample['image_id'],
                     pred=sample['pred_caption'],
                     refs=list(sample.get('gt_caption', []))))

    def _references(self, results: List[dict]) -> Dict[int, List[str]]:
        if self.ann_file is None:
            return {r['image_id']: r['refs'] for r in results}
        from mmupv2.datasets.errors import load_json_file
        refs: Dict[int, List[str]] = {}
        for ann in load_json_file(self.ann_file)['annotations']:
            refs.setdefault(ann['image_id'], []).append(ann['caption'])
        return refs

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        predictions = {r['image_id']: r['pred'] for r in results}
        return caption_scores(predictions, self._references(results),
                              self.scorers)
