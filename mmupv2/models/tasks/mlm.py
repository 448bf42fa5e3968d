# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Masked language modelling: masked positions vs the vocabulary."""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmupv2.models.text_encoders import TextFeatures
from mmupv2.registry import MODELS

from .base import BaseTask
from .interface import SampleList, TaskModel
from .vocabulary import IGNORE_INDEX


@MODELS.register_module()
class MLMTask(BaseTask):
    """Masked language modelling (paper Sec. 5.1, Books&Wiki; v1's
    ``text_mlm``). Text only: the batch has no image tensor.

    ::

        text -> BERT masking -> f_text -> [<SPE>; text tokens] -> g
             -> outputs at the masked positions     h (M, D)
        vocabulary targets (as captioning)          (V', D)
        logits = cos(h, vocab) / tau; cross-entropy with the original tokens
                 (as row indices of the target set)

    Masking is BERT's, done here on the token ids of ``model.tokenize``
    (the data set yields raw lines): ``mask_prob`` of the non-special
    tokens are chosen; 80 % become ``<mask>``, 10 % a random token, 10 %
    stay (the draws of ``transformers.DataCollatorForLanguageModeling``,
    in its order, from the model's :class:`~mmupv2.models.text_encoders.
    SpecialTokens`). A batch in which nothing was chosen gets one chosen
    token per text, so the loss is always defined. Works with any
    tokenizer that has a mask token (RoBERTa's ``<mask>``, BERT's
    ``[MASK]``).

    With ``vocabulary='data'`` the targets are the tokens of the training
    texts (:class:`~.vocabulary.VocabularyTargets`); a chosen token outside
    them is not counted (warned once).

    Predictions (fill-mask): for a sample whose ``text`` contains the
    tokenizer's mask token, ``pred_label`` (K,) the predicted token ids of
    its K mask positions and ``pred_text`` the text with them filled in.

    Args:
        mask_prob: share of tokens chosen (0.15).
        **kwargs: see :class:`~.base.BaseTask`.
    """
    task = 'mlm'

    def __init__(self, *, mask_prob: float = 0.15, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < mask_prob < 1:
            raise ValueError(f'mask_prob must lie in (0, 1), got {mask_prob}')
        self.mask_prob = mask_prob

    @staticmethod
    def _texts(data_samples: SampleList) -> List[str]:
        texts = [s.get('text') for s in data_samples]
        if not all(isinstance(t, str) for t in texts):
            raise KeyError('every MLM sample needs a text (str)')
        return texts

    def mask_tokens(self, model: TaskModel, input_ids: Tensor,
                    attention_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """BERT masking.

        Args:
            input_ids (Tensor): (N, L).
            attention_mask (Tensor): (N, L), 1 for real tokens.

        Returns:
            tuple: masked ids (N, L) and labels (N, L), -100 where not
            chosen.
        """
        special_tokens = model.special_tokens
        if special_tokens.mask_id is None:
            raise ValueError(f'{self.task}: the tokenizer has no mask token')
        ids = input_ids.cpu().clone()
        special = torch.isin(ids, torch.tensor(
            special_tokens.special_ids)) | (attention_mask.cpu() == 0)
        # transformers' torch_mask_tokens: the same draws in the same order
        chosen = torch.bernoulli(
            torch.full(ids.shape, self.mask_prob).masked_fill(special,
                                                              0.0)).bool()
        labels = ids.masked_fill(~chosen, IGNORE_INDEX)
        to_mask = torch.bernoulli(torch.full(ids.shape, 0.8)).bool() & chosen
        ids[to_mask] = special_tokens.mask_id
        to_random = torch.bernoulli(torch.full(
            ids.shape, 0.5)).bool() & chosen & ~to_mask
        random_ids = torch.randint(special_tokens.vocab_size, ids.shape,
                                   dtype=torch.long)
        ids[to_random] = random_ids[to_random]
        empty = (labels == IGNORE_INDEX).all(1) & (~special).any(1)
        for row in empty.nonzero().flatten().tolist():
            candidates = (~special[row]).nonzero().flatten()
            pos = candidates[torch.randint(len(candidates), ())]
            labels[row, pos] = ids[row, pos]
            ids[row, pos] = special_tokens.mask_id
        return ids.to(input_ids.device), labels.to(input_ids.device)

    def forward(self, model: TaskModel, inputs,
                data_samples: SampleList) -> Tensor:
        """(N, L, V') vocabulary-target logits of every position of the
        samples' texts, unmasked (``mode='tensor'``); column ``j`` is the
        token ``model.vocabulary_token_ids()[j]``."""
        return self.vocab_logits(
            model, model.encode_text(self._texts(data_samples)))

    def vocab_logits(self, model: TaskModel, text: TextFeatures) -> Tensor:
        """(N, L, V') vocabulary-target logits of every position of the
        encoded texts (N, L) (masked or not): Eq. 6 of ``g([<SPE>;
        f_text(x)])`` at the text positions and the vocabulary targets."""
        hidden = model.decode([text.segment('mlm_text_input')]).segment(0)
        return self.similarity(hidden, model.vocabulary_embeddings())

    def loss(self, model: TaskModel, inputs, data_samples: SampleList
             ) -> Dict[str, Tensor]:
        """``loss_mlm``: cross-entropy at the chosen positions."""
        ids, mask = model.tokenize(self._texts(data_samples))
        ids, labels = self.mask_tokens(model, ids, mask)
        logits = self.vocab_logits(model, model.encode_text(ids, mask))
        targets = model.vocabulary_targets.targets(labels, self.task)
        chosen = targets != IGNORE_INDEX
        if not bool(chosen.any()):
            # every chosen token outside the targets (warned): no NaN
            return dict(loss_mlm=logits.sum() * 0.0)
        loss = F.cross_entropy(logits[chosen], targets[chosen])
        return dict(loss_mlm=loss * self.loss_weight)

    def predict(self, model: TaskModel, inputs,
                data_samples: SampleList) -> SampleList:
        """Fill the mask tokens: ``pred_label`` (K,), ``pred_text``."""
        text = model.encode_text(self._texts(data_samples))
        rows = self.vocab_logits(model, text).argmax(-1)  # (N, L)
        pred = model.vocabulary_token_ids()[rows]  # token ids
        ids = text.input_ids
        is_mask = ids == model.special_tokens.mask_id
        for sample, row_ids, row_pred, row_mask, pad in zip(
                data_samples, ids, pred, is_mask, text.padding_mask):
            filled = torch.where(row_mask, row_pred, row_ids)[~pad]
            sample.set_pred_label(row_pred[row_mask])
            sample.pred_text = model.detokenize(filled.tolist())
        return data_samples
