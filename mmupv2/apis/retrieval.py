# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image-text retrieval (the ``retrieve`` part of
:class:`~mmupv2.apis.UniPerceiverInferencer`)::

    images --model.predict--> image_feat (D,) per image  -> V (N, D)
    texts  --model.predict--> text_feat (1, D) per text  -> T (T, D)
    similarity = cos(V, T) / tau (the retrieval task's)     (N, T)
    each side: pred_score over the other side, pred_label its ranking
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmupv2.structures import UPv2DataSample

from .base import InputsType, SampleList, TaskCall, TaskInferencer

#: Texts drawn per image by ``retrieve``.
RETRIEVAL_LINES = 3


@dataclass
class RetrievalResult:
    """What :meth:`UniPerceiverInferencer.retrieve` returns.

    Attributes:
        image_samples: one sample per image: ``image_feat`` (D,) the
            L2-normalised ``<SPE>`` feature; with texts also ``pred_score``
            (T,) the scaled cosine similarity to each text and ``pred_label``
            (k,) the indices of the best texts, best first.
        text_samples: one sample per text: ``text`` (str), ``text_feat``
            (1, D); with images also ``pred_score`` (N,) and ``pred_label``
            (k,) over the images.
        similarity: (N, T) image-to-text similarities ``cos / tau`` (the
            retrieval task's temperature), or None when one side is empty.
    """
    image_samples: SampleList
    text_samples: SampleList
    similarity: Optional[Tensor]


def rank(samples: SampleList, scores: Tensor, topk: Optional[int]) -> None:
    """Set each sample's ``pred_score`` (M,) from its row of ``scores``
    (N, M) and ``pred_label`` (k,), the best ``topk`` (default all)
    columns."""
    k = scores.shape[1] if topk is None else min(topk, scores.shape[1])
    for sample, row in zip(samples, scores):
        sample.set_pred_score(row)
        sample.set_pred_label(row.topk(k).indices)


class RetrievalInferencer(TaskInferencer):
    """Retrieval: features of images and texts and, given both, their
    similarities with the retrieval task's temperature, ranked both
    ways."""
    tasks = ('retrieval', )

    def __call__(self, images: Optional[InputsType],
                 texts: Optional[Union[str, Sequence[str]]],
                 topk: Optional[int], batch_size: int,
                 vis_kwargs: dict) -> Tuple[RetrievalResult, Optional[list]]:
        """See :meth:`UniPerceiverInferencer.retrieve`; returns the result
        and the drawings (None without both sides or drawing)."""
        engine = self.engine
        task = engine._check_task('retrieval')
        if images is None and texts is None:
            raise ValueError('retrieve needs images=..., texts=... or both')
        if topk is not None and (not isinstance(topk, int) or topk < 1):
            raise ValueError(f'topk must be an int >= 1, got {topk!r}')
        text_list = [texts] if isinstance(texts, str) else list(texts or [])
        for i, text in enumerate(text_list):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'texts[{i}] must be a non-empty str, got '
                                 f'{text!r}')
        image_list = engine._inputs_to_list(images) \
            if images is not None else []
        image_samples = engine.predict_images(
            task, image_list, batch_size) if image_list else []
        text_samples = engine.predict_texts(
            task, text_list, batch_size) if text_list else []
        if not (image_samples and text_samples):
            return RetrievalResult(image_samples, text_samples, None), None
        with torch.no_grad():
            # the features are normalised; the module scales by 1 / tau
            similarity = engine.model.tasks[task].similarity(
                torch.stack([s.image_feat for s in image_samples]),
                torch.cat([s.text_feat for s in text_samples]))
        rank(image_samples, similarity, topk)
        rank(text_samples, similarity.t(), topk)
        vis = engine.visualize(
            image_list, image_samples, task=task, texts=text_list,
            **vis_kwargs)
        return RetrievalResult(image_samples, text_samples, similarity), vis

    def from_call(self, task: str,
                  call: TaskCall) -> Tuple[SampleList, Optional[list]]:
        """The images are the inputs; the image samples are returned."""
        result, vis = self(call.inputs, call.texts, None, call.batch_size,
                           call.vis_kwargs)
        return result.image_samples, vis

    def text_lines(self, sample: UPv2DataSample,
                   texts: Optional[List[str]]) -> List[str]:
        """``'score text'`` of the best :data:`RETRIEVAL_LINES` texts."""
        ranked = sample.pred_label.tolist()[:RETRIEVAL_LINES]
        return [
            f'{float(sample.pred_score[i]):.1f} {texts[i]}' for i in ranked
        ]

    @staticmethod
    def to_dict(sample: UPv2DataSample) -> dict:
        """``image_feat`` / ``text_feat``, ``pred_score`` and
        ``pred_label`` where the sample has them."""
        return {
            key: sample.get(key).tolist()
            for key in ('image_feat', 'text_feat', 'pred_score', 'pred_label')
            if key in sample
        }
