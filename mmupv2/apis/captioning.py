# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image captioning (the ``caption`` part of
:class:`~mmupv2.apis.UniPerceiverInferencer`)::

    images --model.predict(..., [beam_size=k])--> pred_caption (str)
"""
from typing import List, Optional, Tuple

from mmupv2.structures import UPv2DataSample

from .base import InputsType, SampleList, TaskCall, TaskInferencer


class CaptionInferencer(TaskInferencer):
    """Captioning: beam search over the vocabulary targets, with the
    call's ``beam_size`` (default: the captioning head's)."""
    tasks = ('captioning', )

    def __call__(self, imgs: InputsType, beam_size: Optional[int],
                 batch_size: int,
                 vis_kwargs: dict) -> Tuple[SampleList, Optional[list]]:
        """See :meth:`UniPerceiverInferencer.caption`; returns the samples
        and the drawings (or None)."""
        engine = self.engine
        images = engine._inputs_to_list(imgs)
        task = engine._check_task('captioning')
        options = {}
        if beam_size is not None:
            if not isinstance(beam_size, int) or beam_size < 1:
                raise ValueError(
                    f'beam_size must be an int >= 1, got {beam_size!r}')
            options['beam_size'] = beam_size
        preds = engine.predict_images(task, images, batch_size, **options)
        return preds, engine.visualize(images, preds, task=task,
                                       **vis_kwargs)

    def from_call(self, task: str,
                  call: TaskCall) -> Tuple[SampleList, Optional[list]]:
        return self(call.inputs, call.beam_size, call.batch_size,
                    call.vis_kwargs)

    def text_lines(self, sample: UPv2DataSample,
                   texts: Optional[List[str]]) -> List[str]:
        """The caption."""
        return [sample.pred_caption]

    @staticmethod
    def to_dict(sample: UPv2DataSample) -> dict:
        """``caption``."""
        return dict(caption=sample.pred_caption)
