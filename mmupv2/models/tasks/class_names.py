# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Class names as targets: classification, detection, instance
segmentation (open vocabulary, paper Appendix C)."""
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from .interface import TaskModel

#: ``['cat', ['dog', 'puppy']]``: a name, or a list of synonyms, per class
ClassNames = Sequence[Union[str, Sequence[str]]]


def normalize_class_names(classes: ClassNames) -> List[List[str]]:
    """``['cat', ['dog', 'puppy']]`` -> ``[['cat'], ['dog', 'puppy']]``;
    raises a ``ValueError`` naming the bad entry otherwise."""
    if isinstance(classes, str) or not len(classes):
        raise ValueError('classes must be a non-empty list of names (or of '
                         f'lists of synonyms), got {classes!r}')
    out = []
    for i, names in enumerate(classes):
        names = [names] if isinstance(names, str) else names
        if (not isinstance(names, (list, tuple)) or not names
                or not all(isinstance(n, str) and n for n in names)):
            raise ValueError(f'classes[{i}] must be a name or a non-empty '
                             f'list of names, got {classes[i]!r}')
        out.append(list(names))
    return out


class ClassNamesMixin:
    """Class-name targets shared by classification, detection and instance
    segmentation.

    Each class may have several synonyms: training samples one per class
    per batch (v1's rule), inference uses the first. The names are encoded
    as targets ``[<SPE>; f_text(name)]`` with the ``'text_target'``
    attribute by :meth:`TaskModel.encode_targets` (cached at inference,
    keyed by the texts). ``predict(..., classes=[...])`` scores other names
    for that call only; :meth:`set_classes` replaces the head's own.
    """
    classes: Optional[List[List[str]]] = None

    def set_classes(self, classes: ClassNames) -> None:
        """Replace the class names (open-vocabulary inference, paper
        Appendix C)."""
        self.classes = normalize_class_names(classes)

    @property
    def num_classes(self) -> int:
        """Number of classes C (0 before any are set)."""
        return 0 if self.classes is None else len(self.classes)

    def class_texts(self,
                    sample_synonyms: bool,
                    classes: Optional[ClassNames] = None) -> List[str]:
        """One name per class: a random synonym or the first.

        Args:
            sample_synonyms: draw a synonym per class (training).
            classes: names for this call instead of :attr:`classes`.
        """
        names = self.classes if classes is None else normalize_class_names(
            classes)
        if names is None:
            raise RuntimeError(
                f'{type(self).__name__} has no class names: give classes=... '
                'in its config or call set_classes()')
        if not sample_synonyms:
            return [synonyms[0] for synonyms in names]
        picks = [
            int(torch.randint(len(synonyms), ())) if len(synonyms) > 1 else 0
            for synonyms in names
        ]
        return [synonyms[i] for synonyms, i in zip(names, picks)]

    def class_embeddings(self,
                         model: TaskModel,
                         classes: Optional[ClassNames] = None) -> Tensor:
        """(C, D) the decoder's ``<SPE>`` outputs of the class names (of
        ``classes`` if given, else the head's); with gradient in training,
        cached at inference."""
        texts = self.class_texts(self.training, classes)
        return model.encode_targets(texts, 'text_target')
