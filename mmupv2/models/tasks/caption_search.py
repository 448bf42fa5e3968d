# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Greedy and beam search over a step function (caption decoding)."""
from typing import Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor


class CaptionStepper(Protocol):
    """What the searches need from a model.

    ``first`` consumes the start token of every sequence and returns the
    next-token log-probabilities; ``next`` feeds one more token per
    sequence; ``select`` reorders / repeats the sequences' states (beams).
    """

    def first(self, tokens: Tensor) -> Tensor:
        """tokens (N, 1) -> log-probs (N, V)."""

    def next(self, tokens: Tensor) -> Tensor:
        """tokens (N, 1) -> log-probs (N, V)."""

    def select(self, index: Tensor) -> None:
        """index (N',) rows of the current states to keep, in order."""


def _ban(logp: Tensor, banned_ids: Sequence[int]) -> Tensor:
    if banned_ids:
        logp = logp.clone()
        logp[..., list(banned_ids)] = float('-inf')
    return logp


def greedy_search(stepper: CaptionStepper,
                  batch_size: int,
                  bos_id: int,
                  eos_id: int,
                  max_length: int = 20,
                  banned_ids: Sequence[int] = (),
                  device: Optional[torch.device] = None) -> Tensor:
    """Take the most likely token at every step.

    Returns:
        Tensor: (B, T) token ids, ``T <= max_length``; ``eos_id`` after a
        sequence's end.
    """
    tokens = torch.full((batch_size, 1), bos_id, dtype=torch.long,
                        device=device)
    logp = stepper.first(tokens)
    done = torch.zeros(batch_size, dtype=torch.bool, device=logp.device)
    word = tokens[:, 0]
    outputs = []
    for t in range(max_length):
        if t > 0:
            logp = stepper.next(word[:, None])
        word = _ban(logp, banned_ids).argmax(-1)
        word = torch.where(done, torch.full_like(word, eos_id), word)
        outputs.append(word)
        done = done | (word == eos_id)
        if bool(done.all()):
            break
    return torch.stack(outputs, dim=1)


def beam_search(stepper: CaptionStepper,
                batch_size: int,
                bos_id: int,
                eos_id: int,
                beam_size: int = 2,
                max_length: int = 20,
                length_penalty: float = 1.0,
                banned_ids: Sequence[int] = (),
                device: Optional[torch.device] = None
                ) -> Tuple[Tensor, Tensor]:
    """Beam search as Uni-Perceiver v1's ``CaptionBeamSearcherV3``.

    Beams are ranked by the sum of token log-probabilities while searching;
    a beam that has emitted ``eos_id`` is frozen (it may only repeat
    ``eos_id`` at no cost). At the end the ``beam_size`` survivors are
    re-ranked by ``sum_logp / (n + 1) ** length_penalty`` with ``n`` the
    number of non-end tokens (v1's rule; 0 disables the penalty). With
    ``beam_size=1`` the result equals :func:`greedy_search`.

    Args:
        stepper: the model (see :class:`CaptionStepper`).
        batch_size: B.
        bos_id / eos_id: start and end token ids.
        beam_size: K.
        max_length: T, tokens generated at most (end token included).
        length_penalty: exponent of the final re-ranking.
        banned_ids: tokens never generated (padding, start, mask).
        device: device of the start tokens.

    Returns:
        tuple: the best sequence (B, T') with ``T' <= max_length`` and its
        penalised score (B,).
    """
    if beam_size < 1:
        raise ValueError(f'beam_size must be >= 1, got {beam_size}')
    bsz, beams = batch_size, beam_size
    tokens = torch.full((bsz, 1), bos_id, dtype=torch.long, device=device)
    logp = stepper.first(tokens)  # (bsz, vocab)
    vocab = logp.shape[-1]
    dev = logp.device
    seq_logp = torch.zeros(bsz, 1, device=dev)
    word = tokens
    done = torch.zeros(bsz, 1, dtype=torch.bool, device=dev)
    outputs = torch.zeros(bsz, 1, 0, dtype=torch.long, device=dev)
    for t in range(max_length):
        cur = 1 if t == 0 else beams
        if t > 0:
            logp = stepper.next(word.reshape(-1, 1))
        logp = _ban(logp.view(bsz, cur, vocab).float(), banned_ids)
        # a finished beam continues with the end token at no cost
        frozen = torch.full_like(logp, float('-inf'))
        frozen[..., eos_id] = 0.0
        logp = torch.where(done[..., None], frozen, logp)
        cand = (seq_logp[..., None] + logp).view(bsz, cur * vocab)
        seq_logp, idx = cand.topk(beams, dim=-1)  # (bsz, beams)
        beam = torch.div(idx, vocab, rounding_mode='floor')
        word = idx % vocab
        outputs = torch.cat([
            outputs.gather(1, beam[..., None].expand(-1, -1, t)),
            word[..., None]
        ], dim=-1)
        done = done.gather(1, beam) | (word == eos_id)
        stepper.select(
            (torch.arange(bsz, device=dev)[:, None] * cur + beam).view(-1))
        if bool(done.all()):
            break
    score = seq_logp
    if length_penalty > 0:
        n = (outputs != eos_id).sum(-1).float() + 1
        score = seq_logp / n**length_penalty
    best = score.argmax(-1)
    rows = torch.arange(bsz, device=dev)
    return outputs[rows, best], score[rows, best]
