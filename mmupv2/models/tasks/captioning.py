# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Image captioning: next-token retrieval over the vocabulary."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmupv2.models.decoders import DecoderCache, TokenSegment
from mmupv2.registry import MODELS

from .base import BaseTask, image_segment
from .caption_search import beam_search, greedy_search
from .interface import SampleList, TaskModel
from .vocabulary import IGNORE_INDEX


@MODELS.register_module()
class CaptioningTask(BaseTask):
    """Image captioning (paper Sec. 4.3; Uni-Perceiver v1's formulation).

    ::

        [<SPE>; image tokens (B, N); <s> w_1 ... w_{T-1} (B, T)] -> g
            (causal mask on the text: position i sees the image and
             w_<=i; the image tokens never see the text)
        outputs at the T text positions            h (B, T, D)
        vocabulary -> f_text -> [<SPE>; <s> v </s>] -> g -> <SPE>  (V', D)
        logits = cos(h, vocab) / tau (B, T, V'); cross-entropy with
        w_1 ... w_{T-1} </s>  (Eq. 7, padding ignored)

    ``<s>`` / ``</s>`` stand for the tokenizer's begin and end tokens
    (``[CLS]`` / ``[SEP]`` for BERT / MiniLM; see
    :func:`~mmupv2.models.text_encoders.special_tokens.text_boundary_ids`).
    The V' vocabulary targets are every token (``vocabulary='full'``) or
    the tokens of the training data (``'data'``, see
    :class:`~.vocabulary.VocabularyTargets`); the targets of the loss are
    row indices of that set, the generated captions token ids.

    The caption prefix is embedded by the text encoder's *embedding layer*
    only (``model.embed_text``: token + position embeddings + LayerNorm,
    the v1 tokenizer's role);
    the paper is silent here. Running the bidirectional RoBERTa on the
    prefix would let each position see the words it must predict, and a
    causal RoBERTa run could not reuse a key/value cache; the causal
    attention therefore lives in the unified decoder alone, and one
    decoding step costs one token through the decoder.

    Inference: beam search (beam 2, at most 20 tokens, v1's length
    penalty; :func:`~.caption_search.beam_search`) with the decoder's
    key/value cache; ``use_cache=False`` recomputes the whole sequence at
    every step (same result, for benchmarks). The vocabulary embeddings are
    computed once and cached. Special tokens other than the end token are
    never generated, nor tokens outside the vocabulary targets.

    Predictions: ``pred_caption`` (str). Per-call options:
    ``predict(..., beam_size=k, max_length=n)`` decode this call with k
    beams and at most n tokens (default: the head's).

    Args:
        beam_size: beams (1 = greedy).
        max_length: tokens generated at most, ``</s>`` included; training
            captions are truncated to it.
        length_penalty: exponent of the final re-ranking (0 disables).
        use_cache: decode with the key/value cache.
        image_tokens: ``'all'`` / ``'global'`` / ``'regional'``.
        **kwargs: see :class:`~.base.BaseTask`.
    """
    task = 'captioning'

    def __init__(self,
                 *,
                 beam_size: int = 2,
                 max_length: int = 21,
                 length_penalty: float = 1.0,
                 use_cache: bool = True,
                 image_tokens: str = 'all',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.beam_size = beam_size
        self.max_length = max_length
        self.length_penalty = length_penalty
        self.use_cache = use_cache
        self.image_tokens = image_tokens

    # ---------------------------------------------------------- segments
    def image_input(self, model: TaskModel, inputs: Tensor,
                    data_samples: SampleList) -> TokenSegment:
        """The image segment (B, N, C) with the captioning attribute."""
        enc = model.encode_image(inputs, data_samples)
        return image_segment(enc, 'caption_image_input', self.image_tokens)

    @staticmethod
    def text_input(model: TaskModel,
                   input_ids: Tensor,
                   past_length: int = 0,
                   padding_mask: Optional[Tensor] = None) -> TokenSegment:
        """The causal caption segment of tokens (N, L) starting at text
        position ``past_length``."""
        return TokenSegment(
            model.embed_text(input_ids, past_length),
            'text',
            'caption_text_input',
            padding_mask=padding_mask,
            causal=True)

    # ---------------------------------------------------------- training
    def forward(self, model: TaskModel, inputs: Tensor,
                data_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced logits.

        Returns:
            tuple: logits (B, T, V') over the vocabulary targets, the
            targets (B, T) as row indices of the target set (token ids for
            the full vocabulary; ``IGNORE_INDEX`` at padding and for a token
            outside a ``'data'`` subset) and a (B, T) bool mask of the real
            (unpadded) positions.
        """
        captions = [
            self._pick_caption(s, self.training) for s in data_samples
        ]
        ids, mask = model.tokenize(captions, self.max_length + 1)
        text = self.text_input(model, ids[:, :-1], 0, mask[:, :-1] == 0)
        image = self.image_input(model, inputs, data_samples)  # f_image(x)
        out = model.decode([image, text])  # g, causal on the text
        logits = self.similarity(out.segment(1),  # (B, T, V')
                                 model.vocabulary_embeddings())
        valid = mask[:, 1:].bool()
        targets = model.vocabulary_targets.targets(
            ids[:, 1:].masked_fill(~valid, IGNORE_INDEX), self.task)
        return logits, targets, valid

    @staticmethod
    def _pick_caption(sample, random: bool) -> str:
        """A random reference caption in training, else the first."""
        captions = sample.get('gt_caption')
        if not captions:
            raise KeyError('a captioning sample needs gt_caption, got keys '
                           f'{sorted(sample.keys())}')
        if not random:
            return captions[0]
        return captions[int(torch.randint(len(captions), ()))]

    def loss(self, model: TaskModel, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_caption``: next-token cross-entropy, padding (and tokens
        outside the vocabulary targets) ignored."""
        logits, targets, _ = self.forward(model, inputs, data_samples)
        counted = targets != IGNORE_INDEX
        if not bool(counted.any()):
            # every token outside the targets (warned): no signal, no NaN
            return dict(loss_caption=logits.sum() * 0.0)
        loss = F.cross_entropy(logits[counted], targets[counted])
        return dict(loss_caption=loss * self.loss_weight)

    # --------------------------------------------------------- inference
    def banned_ids(self, model: TaskModel) -> List[int]:
        """Token ids never generated: every special token but the end
        (``</s>`` / ``[SEP]``)."""
        special = model.special_tokens
        return [i for i in special.special_ids if i != special.end_id]

    def generate(self,
                 model: TaskModel,
                 inputs: Tensor,
                 data_samples: SampleList,
                 beam_size: Optional[int] = None,
                 use_cache: Optional[bool] = None,
                 greedy: bool = False,
                 max_length: Optional[int] = None) -> Tensor:
        """Decode captions.

        Args:
            model / inputs (B, 3, H, W) / data_samples: as in ``predict``.
            beam_size: overrides ``self.beam_size``.
            use_cache: overrides ``self.use_cache``.
            greedy: use :func:`~.caption_search.greedy_search`.
            max_length: overrides ``self.max_length``.

        Returns:
            Tensor: (B, T) token ids, the end token after the end.
        """
        beam_size = self.beam_size if beam_size is None else beam_size
        max_length = self.max_length if max_length is None else max_length
        for name, value in (('beam_size', beam_size),
                            ('max_length', max_length)):
            if isinstance(value, bool) or not isinstance(
                    value, int) or value < 1:
                raise ValueError(f'{self.task}: {name} must be an int >= 1, '
                                 f'got {value!r}')
        use_cache = self.use_cache if use_cache is None else use_cache
        stepper_cls = CachedCaptionStepper if use_cache else (
            RecomputeCaptionStepper)
        image = self.image_input(model, inputs, data_samples)
        stepper = stepper_cls(self, model, image,
                              model.vocabulary_embeddings())
        special = model.special_tokens
        common = dict(
            batch_size=len(data_samples),
            bos_id=special.begin_id,
            eos_id=special.end_id,
            max_length=max_length,
            banned_ids=self.banned_ids(model),
            device=image.tokens.device)
        if greedy:
            return greedy_search(stepper, **common)
        return beam_search(
            stepper,
            beam_size=beam_size,
            length_penalty=self.length_penalty,
            **common)[0]

    def predict(self,
                model: TaskModel,
                inputs: Tensor,
                data_samples: SampleList,
                *,
                beam_size: Optional[int] = None,
                max_length: Optional[int] = None) -> SampleList:
        """Set ``pred_caption`` (str) from :meth:`generate`, with
        ``beam_size`` beams and at most ``max_length`` tokens for this call
        (default: the head's)."""
        ids = self.generate(model, inputs, data_samples, beam_size=beam_size,
                            max_length=max_length)
        end = model.special_tokens.end_id
        for sample, seq in zip(data_samples, ids.tolist()):
            if end in seq:
                seq = seq[:seq.index(end)]
            sample.set_pred_caption(model.detokenize(seq))
        return data_samples


class CachedCaptionStepper:
    """A :class:`~.caption_search.CaptionStepper` that runs the decoder on
    the new token only, with the key/value cache.

    Args:
        task: the captioning task (its temperature and text embedding).
        model: the model (its text embedding, decoder and vocabulary
            targets).
        image: the image segment (B, N, C), ``'caption_image_input'``.
        vocab: (V', D) vocabulary target embeddings; the log-probabilities
            handed to the search are over every token id (V), ``-inf`` for
            the tokens that are not targets.
    """

    def __init__(self, task: CaptioningTask, model: TaskModel,
                 image: TokenSegment, vocab: Tensor) -> None:
        self.task, self.model, self.image, self.vocab = (task, model, image,
                                                         vocab)
        self.cache: Optional[DecoderCache] = None
        self.length = 0

    def _log_probs(self, hidden: Tensor) -> Tensor:
        """(N, L, D) -> (N, V) next-token log-probabilities."""
        logp = self.task.similarity(hidden[:, -1], self.vocab).log_softmax(-1)
        return self.model.vocabulary_targets.scatter(logp)

    def first(self, tokens: Tensor) -> Tensor:
        text = self.task.text_input(self.model, tokens)
        out = self.model.decode([self.image, text], use_cache=True)
        self.cache, self.length = out.cache, tokens.shape[1]
        return self._log_probs(out.hidden_states)

    def next(self, tokens: Tensor) -> Tensor:
        text = self.task.text_input(self.model, tokens, self.length)
        out = self.model.decode([text], cache=self.cache)
        self.cache, self.length = out.cache, self.length + tokens.shape[1]
        return self._log_probs(out.hidden_states)

    def select(self, index: Tensor) -> None:
        self.cache = self.cache.index_select(index)


class RecomputeCaptionStepper(CachedCaptionStepper):
    """Runs the whole sequence through the decoder at every step: the
    baseline that the key/value cache is measured and tested against."""

    def first(self, tokens: Tensor) -> Tensor:
        self.tokens = tokens
        return self._run()

    def next(self, tokens: Tensor) -> Tensor:
        self.tokens = torch.cat([self.tokens, tokens], dim=1)
        return self._run()

    def _run(self) -> Tensor:
        text = self.task.text_input(self.model, self.tokens)
        out = self.model.decode([self.image, text])
        return self._log_probs(out.hidden_states)

    def select(self, index: Tensor) -> None:
        self.tokens = self.tokens.index_select(0, index)
        pad = self.image.padding_mask
        self.image = TokenSegment(
            self.image.tokens.index_select(0, index), self.image.modality,
            self.image.attribute,
            None if pad is None else pad.index_select(0, index))
