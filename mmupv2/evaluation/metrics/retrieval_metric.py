# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image-text retrieval recall in both directions."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation.metrics import RetrievalRecall

from mmupv2.registry import METRICS


def retrieval_gallery(
    results: List[dict]
) -> Tuple[List[dict], torch.Tensor, torch.Tensor, torch.Tensor]:
    """The test gallery from per-image results (``image_id``, ``image``
    (D,) feature, ``texts`` (n, D) features of its texts), images sorted by
    ``image_id``.

    Returns:
        tuple: the sorted results, image features (I, D), text features
        (T, D) and the index of each text's image (T,).
    """
    results = sorted(results, key=lambda r: r['image_id'])
    image_feats = torch.stack([r['image'] for r in results])
    text_feats = torch.cat([r['texts'] for r in results])
    text_to_image = torch.cat([
        torch.full((len(r['texts']), ), i, dtype=torch.long)
        for i, r in enumerate(results)
    ])
    return results, image_feats, text_feats, text_to_image


@METRICS.register_module()
class ImageTextRetrievalMetric(BaseMetric):
    """R@K for image-to-text and text-to-image retrieval (0-100).

    Each data sample is one test image with the texts that describe it, as
    ``KarpathyRetrievalDataset(test_mode=True)`` gives them; the model's
    ``predict`` adds the embeddings:

    - ``image_feat`` (Tensor): (D,) the image's retrieval feature;
    - ``text_feat`` (Tensor): (T, D) the features of its T texts.

    After all ranks' results are collected, the similarity of every image to
    every text of the test set is the cosine of their features, and R@K is
    computed with mmpretrain's ``RetrievalRecall.calculate`` in both
    directions: an image query is a hit if any of its own texts is in the
    top K; a text query if its image is.

    Args:
        topk: the K of R@K.
        collect_device / prefix: as in mmengine's ``BaseMetric``.
    """
    default_prefix: Optional[str] = 'retrieval'

    def __init__(self, topk: Union[int, Sequence[int]] = (1, 5, 10),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            for key in ('image_feat', 'text_feat'):
                if key not in sample:
                    raise KeyError(
                        f'ImageTextRetrievalMetric: a data sample has no '
                        f"'{key}'")
            self.results.append(
                dict(image_id=sample.get('image_id', len(self.results)),
                     image=sample['image_feat'].detach().cpu().float(),
                     texts=sample['text_feat'].detach().cpu().float()))

    @staticmethod
    def recalls(image_feats: torch.Tensor, text_feats: torch.Tensor,
                text_to_image: torch.Tensor,
                topk: Sequence[int]) -> Dict[str, float]:
        """R@K both ways.

        Args:
            image_feats: (I, D) image features.
            text_feats: (T, D) text features.
            text_to_image: (T,) index of each text's image.
            topk: the K values.

        Returns:
            dict: ``i2t_R@K`` and ``t2i_R@K`` for every K, in [0, 100].
        """
        sim = F.normalize(image_feats, dim=-1) @ F.normalize(
            text_feats, dim=-1).t()  # (I, T)
        return ImageTextRetrievalMetric.recalls_from_similarity(
            sim, text_to_image, topk)

    @staticmethod
    def recalls_from_similarity(sim: torch.Tensor,
                                text_to_image: torch.Tensor,
                                topk: Sequence[int]) -> Dict[str, float]:
        """R@K both ways from an image-text similarity matrix (e.g. the
        ``similarity`` of a ``tools/test.py --out`` retrieval dump).

        Args:
            sim: (I, T) similarity of every image to every text.
            text_to_image: (T,) index of each text's image.
            topk: the K values.

        Returns:
            dict: ``i2t_R@K`` and ``t2i_R@K`` for every K, in [0, 100].
        """
        sim = torch.as_tensor(sim)
        text_to_image = torch.as_tensor(text_to_image)
        image_gt = [
            torch.nonzero(text_to_image == i).flatten()
            for i in range(sim.shape[0])
        ]
        text_gt = [t.view(1) for t in text_to_image]
        # a K beyond the gallery size means "the whole gallery"
        i2t = RetrievalRecall.calculate(
            sim, image_gt, [min(k, sim.shape[1]) for k in topk],
            target_indices=True)
        t2i = RetrievalRecall.calculate(
            sim.t(), text_gt, [min(k, sim.shape[0]) for k in topk],
            target_indices=True)
        metrics = {}
        for k, a, b in zip(topk, i2t, t2i):
            metrics[f'i2t_R@{k}'] = float(a)
            metrics[f't2i_R@{k}'] = float(b)
        return metrics

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        _, image_feats, text_feats, text_to_image = retrieval_gallery(
            results)
        return self.recalls(image_feats, text_feats, text_to_image,
                            self.topk)
