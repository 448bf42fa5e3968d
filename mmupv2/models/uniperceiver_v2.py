# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Uni-Perceiver v2: one set of weights for every task."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.model import BaseModel
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmupv2.registry import MODELS
from mmupv2.structures import TASKS, UPv2DataSample
from mmupv2.utils.checkpoint import safe_checkpoint_loading

from .decoders import DecoderCache, DecoderOutput, TokenSegment
from .image_encoders import ImageEncoderOutput
from .tasks.class_names import ClassNames
from .tasks.gather import gather_shards_with_grad, shard_range
from .tasks.target_cache import TargetEmbeddingCache
from .tasks.vocabulary import VocabularyTargets
from .text_encoders import SpecialTokens, TextFeatures

SampleList = List[UPv2DataSample]
ConfigType = Union[dict, nn.Module]


@MODELS.register_module()
class UniPerceiverV2(BaseModel):
    """The generalist model of the paper: modality encoders ``f``, the
    unified decoder ``g`` and the unified task formulation (Eq. 5-7).

    ::

        image (B, 3, H, W) -- image_encoder --> ImageEncoderOutput
            regional tokens (B, O, C_img), boxes, masks, objectness,
            global tokens (B, G, C_img) [+ proposal losses, matching]
        text (str)  -- text_encoder (tokenizer + HF encoder) --> (N, L, C_txt)
        [<SPE>; segments] -- decoder (shared by all tasks, inputs and
            targets) --> (B, 1 + L, D)
        task head (tasks/<task>.py): which segments go in, which outputs
            are compared with which targets (cosine / tau), the loss, the
            decoding

    ``forward(inputs, data_samples, mode)`` reads the task from the samples'
    metainfo (``sample.task``; a batch holds one task) and hands the batch
    to ``tasks[task]``:

    - ``'loss'`` (:meth:`loss`): a dict of losses whose keys are prefixed
      with the task, e.g. ``'classification.loss_cls'``,
      ``'detection.loss_cls'`` plus the proposal network's losses
      (``'detection.proposal.<encoder key>'``);
    - ``'predict'`` (:meth:`predict`, without options): the samples with
      predictions: ``pred_score`` / ``pred_label`` (classification, as
      mmpretrain), ``pred_instances`` (detection / instance segmentation,
      as mmdet), ``pred_caption`` (captioning), ``image_feat`` /
      ``text_feat`` / ``pred_score`` (retrieval), ``pred_label`` /
      ``pred_text`` (MLM fill-mask);
    - ``'tensor'``: the task head's raw outputs.

    Text-only batches (MLM, retrieval text queries) have ``inputs=None``.

    **The interface of the task heads**
    (:class:`~mmupv2.models.tasks.interface.TaskModel`): a head gets this
    model and uses only the paper's steps, never the encoders' or the
    decoder's modules (shapes in each method's docstring)::

        encode_image(inputs, samples, with_proposal_loss=False)
                                    f_image -> ImageEncoderOutput
        tokenize(texts)             -> ids, attention mask (N, L)
        encode_text(texts | ids)    f_text -> TextFeatures (N, L, C_txt)
        embed_text(ids, past)       embedding layer only (caption prefix)
        decode(segments)            g (Eq. 5) -> DecoderOutput (B, 1+L, D)
        encode_targets(texts, attribute)
                                    g(f_text(y)) at <SPE> -> (N, D)
        vocabulary_embeddings()     the vocabulary targets -> (V', D)
        vocabulary_token_ids(), vocabulary_targets
                                    target row <-> token id
        special_tokens, detokenize(ids)
                                    tokenizer facts, ids -> text

    Image encoder contract: ``image_encoder(inputs, data_samples,
    with_loss=False)`` returns an
    :class:`~mmupv2.models.image_encoders.ImageEncoderOutput`; with
    ``with_loss=True`` (asked for only by detection and instance
    segmentation in training: the paper supervises proposals only there)
    it also holds ``losses`` and ``matched_indices``.

    Vocabulary targets (captioning, MLM): ``vocabulary='full'`` (the
    paper's) compares with every token of the tokenizer, each encoded every
    training step; ``vocabulary='data'`` only with the tokens of the
    training texts (plus the end token), a subset derived at start-up by
    :class:`~mmupv2.engine.hooks.VocabularyFromDataHook` (or set with
    :meth:`set_vocabulary`) and saved in checkpoints (see
    :class:`~mmupv2.models.tasks.vocabulary.VocabularyTargets` and
    docs/tasks.md). Token ids in and out of the tasks stay the tokenizer's.

    Target embeddings (class names, the vocabulary) are encoded by the text
    encoder and the decoder, with gradient in training. At inference they
    are computed once and kept in :attr:`target_cache`, which is invalidated
    by a check of the text encoder's and decoder's parameter versions at
    every lookup (so an optimizer step, ``load_state_dict`` or a device move
    all invalidate it; see
    :class:`~mmupv2.models.tasks.target_cache.TargetEmbeddingCache`).
    In distributed training each rank encodes a ``1/world_size`` shard of
    them and the ranks gather the rest with its gradient
    (``shard_targets``).

    **DDP.** Under unmixed sampling a batch trains one task, so the other
    tasks' temperatures, the experts no segment routes to, and (for
    text-only or non-localization tasks) parts of the image encoder get no
    gradient. Use ``model_wrapper_cfg=dict(type='MMDistributedDataParallel',
    find_unused_parameters=True)``. A zero-valued loss over the unused
    parameters was rejected: it would hand those parameters zero gradients,
    and AdamW / MT-AdamW would still decay their moments, apply weight decay
    and move them on every other task's iteration, whereas with
    ``find_unused_parameters`` they keep ``grad=None`` and the optimizer
    skips them, which is the semantics of sampling one task per step. The
    same task runs on every rank (the loop guarantees it), so no rank waits
    for a gradient another rank never computes.

    Args:
        image_encoder: config (or module) of ``f_image``.
        text_encoder: config (or module) of ``f_text``, e.g.
            ``dict(type='HFTextEncoder', name_or_path='roberta-base')``.
        decoder: config (or module) of the unified decoder;
            ``text_in_dims`` defaults to the text encoder's width.
        tasks: ``{task name: task config}``; names from
            :data:`mmupv2.structures.TASKS`.
        target_chunk_size: targets encoded per text-encoder / decoder call.
        checkpoint_targets: in training, recompute each chunk of target
            embeddings in the backward pass (``torch.utils.checkpoint``)
            instead of storing its activations. Captioning and MLM encode
            the whole vocabulary as targets every step (roberta-base: 50,265
            three-token texts through 12 + 6 layers); stored, its
            activations would need tens of GB, checkpointed only the (V, D)
            outputs and one chunk. Costs one extra forward of the targets.
            ``'auto'`` (default): only when this rank encodes more than one
            chunk (``target_chunk_size`` rows), i.e. when checkpointing
            saves memory: a rank that encodes at most one chunk (its shard
            of the vocabulary on 16 or more GPUs, 1000 class names) keeps
            no more activations than one checkpointed chunk would, and
            skips the recomputation (a quarter of the target encoding's
            FLOPs; docs/benchmark.md "Paper-scale step cost"). The result is
            the same either way.
        shard_targets: in distributed training, each rank encodes
            ``1/world_size`` of a target set (class names, the vocabulary;
            uneven splits allowed) and the ranks gather the (N, D)
            embeddings with their gradient
            (:func:`~mmupv2.models.tasks.gather.gather_shards_with_grad`),
            as Uni-Perceiver v1 splits its vocabulary: after DDP's
            averaging every gradient equals that of each rank encoding
            every target, at ``1/world_size`` of the cost. Retrieval's
            per-batch texts, inference and a single process are unchanged
            (no collective). Needs every rank to encode the same target
            set in the same order, which ``MultiTaskLoop`` guarantees (one
            task, or the same mixed entries, on every rank); class-name
            synonyms are then drawn by the rank that encodes the class.
        data_preprocessor: e.g. ``dict(type='mmdet.DetDataPreprocessor',
            ...)``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 *,
                 image_encoder: ConfigType,
                 text_encoder: ConfigType,
                 decoder: ConfigType,
                 tasks: Dict[str, ConfigType],
                 target_chunk_size: int = 4096,
                 checkpoint_targets: Union[bool, str] = 'auto',
                 shard_targets: bool = True,
                 vocabulary: str = 'full',
                 data_preprocessor: Optional[ConfigType] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.image_encoder = self._build(image_encoder)
        self.text_encoder = self._build(text_encoder)
        if isinstance(decoder, dict):
            decoder = dict(decoder)
            decoder.setdefault('text_in_dims', self.text_encoder.embed_dims)
        self.decoder = self._build(decoder)
        if not tasks:
            raise ValueError('UniPerceiverV2 needs at least one task')
        self.tasks = nn.ModuleDict()
        for name, cfg in tasks.items():
            if name not in TASKS:
                raise KeyError(f'tasks: unknown task {name!r}; expected one '
                               f'of {", ".join(TASKS)}')
            head = self._build(cfg)
            if getattr(head, 'task', name) != name:
                raise ValueError(f'tasks[{name!r}] is a {type(head).__name__}'
                                 f', which implements {head.task!r}')
            self.tasks[name] = head
        self.target_chunk_size = target_chunk_size
        if checkpoint_targets not in (True, False, 'auto'):
            raise ValueError('UniPerceiverV2: checkpoint_targets must be '
                             f"True, False or 'auto', got "
                             f'{checkpoint_targets!r}')
        self.checkpoint_targets = checkpoint_targets
        self.shard_targets = shard_targets
        self.target_cache = TargetEmbeddingCache()
        self.vocabulary_targets = VocabularyTargets(
            self.text_encoder.tokenizer, vocabulary)

    @staticmethod
    def _build(cfg: ConfigType) -> nn.Module:
        return cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)

    def init_weights(self) -> None:
        """mmengine's initialisation, with the files of
        ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (URLs too) read
        by mmupv2's weights-only loader (``docs/checkpoints.md``)."""
        with safe_checkpoint_loading():
            super().init_weights()

    # ----------------------------------------------------------- dispatch
    def batch_task(self, data_samples: Optional[SampleList]) -> str:
        """The task of a batch (all samples must share it)."""
        if not data_samples:
            raise ValueError('UniPerceiverV2 needs data_samples that carry '
                             'the task in their metainfo')
        tasks = {s.metainfo.get('task') for s in data_samples}
        if len(tasks) != 1:
            raise ValueError(f'a batch must hold one task, got {tasks}')
        task = tasks.pop()
        if task not in self.tasks:
            raise KeyError(f'the batch is for task {task!r}, but the model '
                           f'has only {", ".join(self.tasks)}')
        return task

    def forward(self,
                inputs: Optional[Tensor] = None,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor'):
        """
        Args:
            inputs (Tensor, optional): (B, 3, H, W) images; None for text
                batches.
            data_samples (list[UPv2DataSample]): the batch, task in metainfo.
            mode: ``'loss'``, ``'predict'`` or ``'tensor'``.

        Returns:
            dict[str, Tensor] | list[UPv2DataSample] | Any: see the class
            docstring.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            task = self.batch_task(data_samples)
            return self.tasks[task](self, inputs, data_samples)
        raise ValueError(f'invalid mode {mode!r}; expected loss, predict or '
                         'tensor')

    def loss(self, inputs: Optional[Tensor],
             data_samples: SampleList) -> Dict[str, Tensor]:
        """The batch's task losses (Eq. 7), keys prefixed with the task.

        Args:
            inputs (Tensor, optional): (B, 3, H, W) images; None for text
                batches.
            data_samples (list[UPv2DataSample]): the batch, task in metainfo.

        Returns:
            dict[str, Tensor]: scalar losses, e.g. ``'detection.loss_cls'``.
        """
        task = self.batch_task(data_samples)
        losses = self.tasks[task].loss(self, inputs, data_samples)
        return {f'{task}.{k}': v for k, v in losses.items()}

    def predict(self, inputs: Optional[Tensor], data_samples: SampleList,
                **options) -> SampleList:
        """The batch's predictions, with per-call options.

        Options change this call only, never the model or its heads:

        - ``classes=[...]`` (classification, detection, instance
          segmentation): the label space, names or lists of synonyms
          (open vocabulary, Appendix C); their target embeddings are cached
          by text like the heads' own;
        - ``beam_size=k``, ``max_length=n`` (captioning): beams and tokens
          at most.

        Args:
            inputs (Tensor, optional): (B, 3, H, W) images; None for text
                batches.
            data_samples (list[UPv2DataSample]): the batch, task in metainfo.
            **options: see above; the head's ``predict_options()``.

        Returns:
            list[UPv2DataSample]: the samples with predictions (see the
            class docstring).

        Raises:
            TypeError: an option the batch's task does not take (names the
                option and the task).
        """
        task = self.batch_task(data_samples)
        head = self.tasks[task]
        supported = head.predict_options()
        unknown = [name for name in options if name not in supported]
        if unknown:
            raise TypeError(
                f'predict: task {task!r} takes no option '
                f'{", ".join(map(repr, unknown))}; its options: '
                f'{", ".join(supported) or "none"}')
        return head.predict(self, inputs, data_samples, **options)

    def set_classes(self, task: str, classes: ClassNames) -> None:
        """Replace the class names of ``task`` (open vocabulary); for one
        call only, use ``predict(..., classes=...)`` instead."""
        if not hasattr(self.tasks[task], 'set_classes'):
            raise TypeError(f'task {task!r} has no class names')
        self.tasks[task].set_classes(classes)

    # ------------------------------------------- the steps (task interface)
    def encode_image(self,
                     inputs: Optional[Tensor],
                     data_samples: SampleList,
                     *,
                     with_proposal_loss: bool = False
                     ) -> ImageEncoderOutput:
        """``f_image`` (Sec. 4.1): global and regional tokens.

        Args:
            inputs (Tensor): (B, 3, H, W) images, padded.
            data_samples (list[UPv2DataSample]): with ``img_shape`` and
                ``batch_input_shape``; with the proposal loss also
                ``gt_instances`` (``bboxes``, ``labels``, ``masks``).
            with_proposal_loss: also compute the proposal network's losses
                and matching (detection / instance segmentation training
                only, Appendix A). Asked explicitly: nothing is inferred
                from what the samples carry.

        Returns:
            ImageEncoderOutput: regional tokens (B, O, C_img), boxes
            (B, O, 4), masks (B, O, H/4, W/4), objectness (B, O), global
            tokens (B, G, C_img) with padding mask (B, G); ``losses`` and
            ``matched_indices`` with the proposal loss.
        """
        if not isinstance(inputs, Tensor) or inputs.dim() != 4:
            raise ValueError(
                f'task {data_samples[0].metainfo.get("task")!r} needs a '
                '(B, 3, H, W) image tensor as inputs, got '
                f'{type(inputs).__name__}')
        out = self.image_encoder(
            inputs, data_samples, with_loss=with_proposal_loss)
        if not isinstance(out, ImageEncoderOutput):
            raise TypeError(f'{type(self.image_encoder).__name__} must return'
                            f' an ImageEncoderOutput, got {type(out)}')
        return out

    def tokenize(self,
                 texts: Sequence[str],
                 max_length: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Tokenise with the begin / end tokens, pad to the longest text,
        truncate to ``max_length`` (default: the text encoder's).

        Returns:
            tuple: ``input_ids`` (N, L) and ``attention_mask`` (N, L), 1 for
            real tokens, on the model's device.
        """
        return self.text_encoder.tokenize(texts, max_length)

    def encode_text(self,
                    texts: Union[Sequence[str], Tensor],
                    attention_mask: Optional[Tensor] = None,
                    *,
                    max_length: Optional[int] = None) -> TextFeatures:
        """``f_text`` (Sec. 4.2): the whole (bidirectional) text encoder.

        Args:
            texts: N texts (tokenised here, see :meth:`tokenize`), or
                (N, L) token ids with their ``attention_mask``.
            attention_mask (Tensor, optional): (N, L), 1 for real tokens;
                with token ids only (default: all real).
            max_length: truncation of ``texts``.

        Returns:
            TextFeatures: ``input_ids`` (N, L), ``tokens`` (N, L, C_txt),
            ``padding_mask`` (N, L) bool; ``.segment(attribute)`` is the
            decoder input.
        """
        if isinstance(texts, Tensor):
            input_ids = texts
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
        else:
            input_ids, attention_mask = self.tokenize(texts, max_length)
        return TextFeatures(
            input_ids=input_ids,
            tokens=self.text_encoder(input_ids, attention_mask),
            padding_mask=attention_mask == 0)

    def embed_text(self, input_ids: Tensor, past_length: int = 0) -> Tensor:
        """The text encoder's embedding layer only: the causal caption
        prefix (see ``CaptioningTask``), positions starting after
        ``past_length`` earlier tokens (one decoding step at a time).

        Args:
            input_ids (Tensor): (N, L) token ids.
            past_length: tokens before ``input_ids[:, 0]``.

        Returns:
            Tensor: (N, L, C_txt).
        """
        return self.text_encoder.embed(input_ids, past_length)

    def decode(self,
               segments: Sequence[TokenSegment],
               cache: Optional[DecoderCache] = None,
               use_cache: bool = False) -> DecoderOutput:
        """The unified decoder ``g`` on ``[<SPE>; segments]`` (Eq. 5), or
        a continuation of a cached sequence.

        Args:
            segments: token segments (B, L_i, C) with modality, MoE
                attribute and padding / causal flags; with ``cache``, one
                segment of new tokens.
            cache: the key/value state of the earlier tokens.
            use_cache: return the state too.

        Returns:
            DecoderOutput: ``hidden_states`` (B, 1 + sum L_i, D); ``.spe``
            (B, D), ``.segment(i)`` (B, L_i, D), ``.cache``.
        """
        return self.decoder(segments, cache=cache, use_cache=use_cache)

    @property
    def special_tokens(self) -> SpecialTokens:
        """The tokenizer's begin / end / mask / special token ids and its
        size (captioning, MLM)."""
        return self.text_encoder.special_tokens

    def detokenize(self, token_ids: Sequence[int]) -> str:
        """Token ids -> text without special tokens."""
        return self.text_encoder.detokenize(token_ids)

    # ------------------------------------------------------------ targets
    @property
    def target_modules(self) -> Sequence[nn.Module]:
        """The modules whose weights the target embeddings depend on."""
        return (self.text_encoder, self.decoder)

    def _encode_target_chunk(self, input_ids: Tensor, attention_mask: Tensor,
                             attribute: str) -> Tensor:
        """(n, L) token ids -> (n, D) ``<SPE>`` outputs."""
        text = self.encode_text(input_ids, attention_mask)
        return self.decode([text.segment(attribute)]).spe

    def _decode_text_ids(self,
                         input_ids: Tensor,
                         attention_mask: Tensor,
                         attribute: str,
                         checkpointed: bool = True,
                         sharded: bool = True) -> Tensor:
        """(N, L) token ids -> (N, D) ``<SPE>`` outputs, ``target_chunk_size``
        at a time; with gradient checkpointing per chunk in training when
        ``checkpoint_targets`` says so for this rank's rows (and
        ``checkpointed``, see :meth:`checkpoints_targets`); in distributed
        training a shard of the rows per rank when ``shard_targets`` (and
        ``sharded``, see :meth:`shards_targets`)."""
        num = input_ids.shape[0]
        sharded = sharded and self.shards_targets(num)
        if sharded:
            rows = shard_range(num)
            input_ids, attention_mask = input_ids[rows], attention_mask[rows]
        outs = []
        checkpointed = (checkpointed and torch.is_grad_enabled()
                        and self.checkpoints_targets(input_ids.shape[0]))
        for start in range(0, input_ids.shape[0], self.target_chunk_size):
            chunk = (input_ids[start:start + self.target_chunk_size],
                     attention_mask[start:start + self.target_chunk_size],
                     attribute)
            if checkpointed:
                outs.append(
                    checkpoint(
                        self._encode_target_chunk, *chunk,
                        use_reentrant=False))
            else:
                outs.append(self._encode_target_chunk(*chunk))
        out = torch.cat(outs)
        return gather_shards_with_grad(out, num) if sharded else out

    def checkpoints_targets(self, rows: int) -> bool:
        """Whether encoding ``rows`` targets on this rank (with gradient)
        is gradient-checkpointed per chunk (``checkpoint_targets``)."""
        if self.checkpoint_targets == 'auto':
            return rows > self.target_chunk_size
        return bool(self.checkpoint_targets)

    def shards_targets(self, num: int) -> bool:
        """Whether a target set of ``num`` texts is encoded a shard per
        rank: ``shard_targets``, training with gradient, more than one rank
        and at least one target per rank."""
        if not (self.shard_targets and self.training
                and torch.is_grad_enabled()):
            return False
        world_size = get_world_size()
        return world_size > 1 and num >= world_size

    def encode_targets(self,
                       texts: Sequence[str],
                       attribute: str = 'text_target',
                       *,
                       per_batch: bool = False) -> Tensor:
        """Target embeddings of texts (class names, retrieval texts):
        ``g([<SPE>; f_text(text)])`` at ``<SPE>``, ``target_chunk_size``
        texts per call.

        A target set (class names) is gradient-checkpointed in training
        when ``checkpoint_targets`` and kept in :attr:`target_cache` in
        eval mode, keyed by (attribute, texts).

        Args:
            texts: N texts.
            attribute: the MoE attribute of the target segment.
            per_batch: the texts come with the batch (retrieval: B new
                texts every step, like its B images): neither cached,
                checkpointed nor sharded (each rank's texts are its own).

        Returns:
            Tensor: (N, D); with gradient in training mode.
        """
        texts = list(texts)

        def compute() -> Tensor:
            return self._decode_text_ids(*self.tokenize(texts), attribute,
                                         checkpointed=not per_batch,
                                         sharded=not per_batch)

        if self.training or per_batch:
            return compute()
        return self.target_cache.get(('texts', attribute, tuple(texts)),
                                     compute, self.target_modules)

    @property
    def vocabulary(self) -> str:
        """The vocabulary option: ``'full'`` or ``'data'``."""
        return self.vocabulary_targets.mode

    def set_vocabulary(self, token_ids: Union[Sequence[int], Tensor]) -> None:
        """Make these token ids (plus the end token) the vocabulary targets
        of captioning and MLM (``vocabulary='data'`` only).

        Args:
            token_ids: (V',) token ids of the text encoder's tokenizer.
        """
        self.vocabulary_targets.set(token_ids)

    def vocabulary_token_ids(self) -> Tensor:
        """(V',) the token id of every vocabulary target, sorted (every id
        of the tokenizer with ``vocabulary='full'``)."""
        return self.vocabulary_targets.token_ids(self.text_encoder.device)

    def vocabulary_ids(self) -> Tensor:
        """(V', 3) the target texts ``[begin, token, end]`` (``<s> v </s>``
        for RoBERTa, ``[CLS] v [SEP]`` for BERT), one per vocabulary target.
        """
        return self.vocabulary_targets.input_ids(self.text_encoder.device)

    def vocabulary_embeddings(self) -> Tensor:
        """Target embeddings of the vocabulary targets (captioning, MLM),
        each token encoded as the text ``[begin, token, end]`` with the
        ``'vocab_target'`` attribute (v1's "Vocab_Word").

        Returns:
            Tensor: (V', D), rows in the order of
            :meth:`vocabulary_token_ids`; with gradient in training mode
            (every target every step, as v1), cached in eval mode.
        """

        def compute() -> Tensor:
            ids = self.vocabulary_ids()
            return self._decode_text_ids(ids, torch.ones_like(ids),
                                         'vocab_target')

        if self.training:
            return compute()
        key = ('vocabulary', self.vocabulary, self.vocabulary_targets.version)
        return self.target_cache.get(key, compute, self.target_modules)
