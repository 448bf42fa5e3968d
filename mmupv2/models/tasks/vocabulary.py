# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The vocabulary target set of captioning and MLM: every token, or only the
tokens of the training texts."""
from typing import Optional, Sequence, Set, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor

from mmupv2.models.text_encoders.special_tokens import text_boundary_ids

#: ``UniPerceiverV2(vocabulary=...)``: the whole tokenizer (the paper's), or
#: the tokens that occur in the training data
VOCABULARY_MODES = ('full', 'data')

#: the index of a target that does not count (``F.cross_entropy``'s default)
IGNORE_INDEX = -100

#: how to set the subset, for the errors
HOW_TO_SET = (
    "add dict(type='VocabularyFromDataHook') to custom_hooks (it derives the "
    'subset from the training data of the captioning / mlm entries), load a '
    "checkpoint trained with vocabulary='data', or call "
    'model.set_vocabulary(token_ids)')


class VocabularyTargets(nn.Module):
    """Which tokens captioning and MLM compare their outputs with.

    ::

        'full': targets = every token id 0 .. V-1 of the tokenizer
        'data': targets = token_ids (V',), sorted, a persistent buffer
        target row i = [begin, targets[i], end]  -> text encoder + decoder
        token id  --targets()-->  row index i   (IGNORE_INDEX if absent)
        row index --token_ids()[i]-->  token id
        scores (..., V') --scatter()--> (..., V), -inf off the subset

    With ``'full'`` a row index *is* the token id, so every mapping is the
    identity and nothing is stored in the ``state_dict`` (checkpoints of
    the paper's setting are unchanged). With ``'data'`` the subset is the
    buffer ``token_ids`` (saved in checkpoints, so testing and inference
    restore it); a freshly built model holds an empty one, which
    :meth:`set` (or loading a checkpoint of any subset size) fills. The
    subset always holds the end token (captioning's stop).

    Args:
        tokenizer: the text encoder's tokenizer (its size and its begin /
            end tokens; see
            :func:`~mmupv2.models.text_encoders.special_tokens.text_boundary_ids`).
        mode: ``'full'`` or ``'data'``.
    """

    def __init__(self, tokenizer, mode: str = 'full') -> None:
        super().__init__()
        if mode not in VOCABULARY_MODES:
            raise ValueError(f'UniPerceiverV2: vocabulary must be one of '
                             f'{VOCABULARY_MODES}, got {mode!r}')
        self.mode = mode
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        #: bumped whenever the subset changes (keys the embedding cache)
        self.version = 0
        self._warned: Set[str] = set()
        self._full_ids: Optional[Tensor] = None
        if mode == 'data':
            self.register_buffer('subset', torch.zeros(0, dtype=torch.long))

    # ------------------------------------------------------------ the set
    @property
    def is_subset(self) -> bool:
        """Whether the targets are a subset of the tokenizer's tokens."""
        return self.mode == 'data'

    @property
    def is_set(self) -> bool:
        """False for a ``'data'`` target set that was never filled."""
        return not self.is_subset or self.subset.numel() > 0

    def set(self, token_ids: Union[Sequence[int], Tensor]) -> None:
        """Use these tokens (plus the end token) as the targets.

        Args:
            token_ids: token ids of the tokenizer, in any order, repeats
                allowed.

        Raises:
            ValueError: the model uses the full vocabulary, or an id lies
                outside ``[0, vocab_size)``.
        """
        if not self.is_subset:
            raise ValueError(
                "set_vocabulary: the model was built with vocabulary='full' "
                "(every token is a target); build it with vocabulary='data' "
                'to use a subset')
        ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
        bad = ids[(ids < 0) | (ids >= self.vocab_size)]
        if bad.numel():
            raise ValueError(
                f'set_vocabulary: token ids {bad[:10].tolist()} lie outside '
                f'the tokenizer\'s vocabulary [0, {self.vocab_size})')
        end = text_boundary_ids(self.tokenizer)[1]
        ids = torch.cat([ids, ids.new_tensor([end])]).unique(sorted=True)
        self.subset = ids.to(self.subset.device)
        self.version += 1

    def _check_set(self) -> None:
        if not self.is_set:
            raise RuntimeError(
                "UniPerceiverV2(vocabulary='data'): the vocabulary target "
                'subset is empty, so captioning / MLM have no targets; '
                + HOW_TO_SET)

    def __len__(self) -> int:
        """V', the number of targets."""
        self._check_set()
        return self.subset.numel() if self.is_subset else self.vocab_size

    # ---------------------------------------------------------- mappings
    def token_ids(self, device: Optional[torch.device] = None) -> Tensor:
        """(V',) the token id of every target row (sorted)."""
        self._check_set()
        if self.is_subset:
            ids = self.subset
        else:
            if self._full_ids is None:
                self._full_ids = torch.arange(self.vocab_size)
            ids = self._full_ids
        if device is not None and ids.device != torch.device(device):
            ids = ids.to(device)
            if not self.is_subset:
                self._full_ids = ids
        return ids

    def input_ids(self, device: Optional[torch.device] = None) -> Tensor:
        """(V', 3) the target texts ``[begin, token, end]`` (``<s> v </s>``
        or ``[CLS] v [SEP]``)."""
        ids = self.token_ids(device)
        begin, end = text_boundary_ids(self.tokenizer)
        return torch.stack(
            [torch.full_like(ids, begin), ids,
             torch.full_like(ids, end)], dim=1)

    def targets(self, token_ids: Tensor, task: str) -> Tensor:
        """Token ids -> target row indices (class indices of the loss).

        Args:
            token_ids (Tensor): (...) token ids; ``IGNORE_INDEX`` entries
                (padding, unchosen MLM positions) stay so.
            task: the caller, named in the warning.

        Returns:
            Tensor: (...) row indices; ``IGNORE_INDEX`` where ignored or
            where the token is not a target (the first time, a warning
            names the task and the tokens).
        """
        if not self.is_subset:
            return token_ids
        subset = self.token_ids(token_ids.device)
        pos = torch.searchsorted(subset, token_ids).clamp(max=len(subset) - 1)
        found = subset[pos] == token_ids
        ignored = token_ids == IGNORE_INDEX
        missing = ~found & ~ignored
        if bool(missing.any()) and task not in self._warned:
            self._warned.add(task)
            tokens = self.tokenizer.convert_ids_to_tokens(
                token_ids[missing].unique()[:10].tolist())
            print_log(
                f'{task}: {int(missing.sum())} target tokens (e.g. '
                f'{tokens}) are not in the vocabulary subset of '
                f'{len(subset)} tokens and are ignored; derive the subset '
                'from the data you train on (VocabularyFromDataHook). '
                'Warned once.',
                logger='current', level=30)
        return torch.where(found, pos, torch.full_like(pos, IGNORE_INDEX))

    def scatter(self, scores: Tensor,
                fill: float = float('-inf')) -> Tensor:
        """(..., V') scores of the targets -> (..., V) scores of every token
        id, ``fill`` for the tokens that are not targets (identity for the
        full vocabulary)."""
        if not self.is_subset:
            return scores
        out = scores.new_full((*scores.shape[:-1], self.vocab_size), fill)
        index = self.token_ids(scores.device).expand_as(scores)
        return out.scatter(-1, index, scores)

    # -------------------------------------------------------- checkpoints
    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Resize the (empty) subset to the checkpoint's before loading."""
        key = prefix + 'subset'
        if self.is_subset and key in state_dict:
            incoming = state_dict[key]
            if incoming.shape != self.subset.shape:
                self.subset = torch.empty_like(
                    incoming, device=self.subset.device)
            self.version += 1
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        size = len(self) if self.is_set else 'unset'
        return f'mode={self.mode!r}, targets={size}'
