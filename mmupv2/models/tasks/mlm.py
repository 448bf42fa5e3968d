# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Masked language modelling: masked positions vs the vocabulary."""
from typing import TYPE_CHECKING, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmupv2.models.decoders import TokenSegment
from mmupv2.registry import MODELS

from .base import BaseTask, SampleList
from .vocabulary import IGNORE_INDEX

if TYPE_CHECKING:
    from mmupv2.models.uniperceiver_v2 import UniPerceiverV2


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

    Masking is BERT's, done here because the tokenizer belongs to the text
    encoder (the data set yields raw lines): ``mask_prob`` of the non-special
    tokens are chosen; 80 % become ``<mask>``, 10 % a random token, 10 %
    stay (``transformers.DataCollatorForLanguageModeling``). A batch in
    which nothing was chosen gets one chosen token per text, so the loss is
    always defined. Works with any tokenizer that has a mask token
    (RoBERTa's ``<mask>``, BERT's ``[MASK]``).

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

    def mask_tokens(self, model: 'UniPerceiverV2', input_ids: Tensor,
                    attention_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """BERT masking.

        Args:
            input_ids (Tensor): (N, L).
            attention_mask (Tensor): (N, L), 1 for real tokens.

        Returns:
            tuple: masked ids (N, L) and labels (N, L), -100 where not
            chosen.
        """
        from transformers import DataCollatorForLanguageModeling
        tok = model.text_encoder.tokenizer
        collator = DataCollatorForLanguageModeling(
            tok, mlm_probability=self.mask_prob, return_tensors='pt')
        special = torch.tensor(
            [
                tok.get_special_tokens_mask(
                    ids, already_has_special_tokens=True)
                for ids in input_ids.tolist()
            ],
            dtype=torch.bool) | (attention_mask.cpu() == 0)
        ids, labels = collator.torch_mask_tokens(input_ids.cpu().clone(),
                                                 special.clone())
        empty = (labels == -100).all(1) & (~special).any(1)
        for row in empty.nonzero().flatten().tolist():
            candidates = (~special[row]).nonzero().flatten()
            pos = candidates[torch.randint(len(candidates), ())]
            labels[row, pos] = ids[row, pos]
            ids[row, pos] = tok.mask_token_id
        return ids.to(input_ids.device), labels.to(input_ids.device)

    def forward(self, model: 'UniPerceiverV2', inputs,
                data_samples: SampleList) -> Tensor:
        """(N, L, V') vocabulary-target logits of every position of the
        samples' texts, unmasked (``mode='tensor'``); column ``j`` is the
        token ``model.vocabulary_token_ids()[j]``."""
        ids, mask = model.text_encoder.tokenize(self._texts(data_samples))
        return self.vocab_logits(model, ids, mask)

    def vocab_logits(self, model: 'UniPerceiverV2', input_ids: Tensor,
                     attention_mask: Tensor) -> Tensor:
        """(N, L, V') vocabulary-target logits of every position of the
        token ids (N, L) (masked or not)."""
        feats = model.text_encoder(input_ids, attention_mask)
        seg = TokenSegment(
            feats, 'text', 'mlm_text_input', padding_mask=attention_mask == 0)
        hidden = model.decoder([seg]).segment(0)
        return self.similarity(hidden, model.vocabulary_embeddings())

    def loss(self, model: 'UniPerceiverV2', inputs, data_samples: SampleList
             ) -> Dict[str, Tensor]:
        """``loss_mlm``: cross-entropy at the chosen positions."""
        ids, mask = model.text_encoder.tokenize(self._texts(data_samples))
        ids, labels = self.mask_tokens(model, ids, mask)
        logits = self.vocab_logits(model, ids, mask)
        targets = model.vocabulary_targets.targets(labels, self.task)
        chosen = targets != IGNORE_INDEX
        if not bool(chosen.any()):
            # every chosen token outside the targets (warned): no NaN
            return dict(loss_mlm=logits.sum() * 0.0)
        loss = F.cross_entropy(logits[chosen], targets[chosen])
        return dict(loss_mlm=loss * self.loss_weight)

    def predict(self, model: 'UniPerceiverV2', inputs,
                data_samples: SampleList) -> SampleList:
        """Fill the mask tokens: ``pred_label`` (K,), ``pred_text``."""
        tok = model.text_encoder.tokenizer
        ids, mask = model.text_encoder.tokenize(self._texts(data_samples))
        rows = self.vocab_logits(model, ids, mask).argmax(-1)  # (N, L)
        pred = model.vocabulary_token_ids()[rows]  # token ids
        is_mask = ids == tok.mask_token_id
        for sample, row_ids, row_pred, row_mask, att in zip(
                data_samples, ids, pred, is_mask, mask):
            filled = torch.where(row_mask, row_pred, row_ids)[att.bool()]
            sample.set_pred_label(row_pred[row_mask])
            sample.pred_text = tok.decode(
                filled.tolist(), skip_special_tokens=True).strip()
        return data_samples
