# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The unified decoder ``g`` of Uni-Perceiver v2 (paper Sec. 4.3, App. B)."""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmupv2.registry import MODELS

from .attributes import MOE_ATTRIBUTES, check_attribute
from .kv_cache import DecoderCache
from .layer import UnifiedDecoderLayer
from .sequence import (
    MODALITIES,
    TokenSegment,
    build_attention_mask,
    causal_ids,
)

#: The paper's MoE setting: 8 experts in every FFN, top-2 (Appendix B).
DEFAULT_MOE_CFG = dict(num_experts=8, top_k=2, noise_std=1.0)


@dataclass
class DecoderOutput:
    """What the unified decoder returns.

    Attributes:
        hidden_states (Tensor): (B, L, D) the final-LayerNorm outputs; for a
            full input ``L = 1 + sum(segment lengths)`` with ``<SPE>`` at
            index 0; for an incremental step only the new tokens.
        spans (list[tuple[int, int]]): ``(start, end)`` of each input
            segment in ``hidden_states`` (``<SPE>`` excluded).
        cache (DecoderCache, optional): keys/values of every token so far,
            when asked for.
    """
    hidden_states: Tensor
    spans: List[Tuple[int, int]]
    cache: Optional[DecoderCache] = None

    @property
    def spe(self) -> Tensor:
        """(B, D) the ``<SPE>`` token's output (full inputs only)."""
        return self.hidden_states[:, 0]

    def segment(self, index: int) -> Tensor:
        """(B, L_i, D) the outputs of input segment ``index``."""
        start, end = self.spans[index]
        return self.hidden_states[:, start:end]


@MODELS.register_module()
class UnifiedDecoder(BaseModule):
    """A modality-agnostic Transformer shared by every task and by both the
    input and the target side: ``g`` of Eq. 6.

    Data flow::

        segments (image tokens (B, L_i, C_img) / text tokens (B, L_t, C_txt))
          -> project to D (Linear, or identity when C == D)
             + modality embedding (image / text)
          -> [<SPE>; seg_1; seg_2 ...]                     (B, 1 + sum L, D)
          -> num_layers x pre-LN BERT layer (self-attention with padding and
             causal masks; conditional MoE FFN routed by each segment's
             attribute vector; stochastic depth)
          -> LayerNorm                                     (B, 1 + sum L, D)

    Choices where the paper is silent: a learned modality embedding tells
    the shared attention which tokens are image and which text; the
    ``<SPE>`` token (a learned vector) is routed with the first segment, as
    v1 feeds it in the input whose attribute it shares; a uniform
    stochastic-depth rate (Appendix B says uniform); BERT's dropout 0.1;
    weights drawn from N(0, 0.02) as BERT.

    Key/value cache: ``forward(segments, use_cache=True)`` returns a
    :class:`DecoderCache`; ``forward([new_tokens], cache=cache)`` then runs
    only the new tokens, which continue the last (causal) segment. Both
    paths give the same outputs (tested). Use it in eval mode: the MoE gate
    is recomputed per call and draws fresh noise in training.

    Args:
        embed_dims: model width D (768, BERT-base).
        num_layers: 6 (paper Sec. 5.2).
        num_heads: 12.
        feedforward_channels: 3072.
        image_in_dims: width of the image encoder's tokens (256).
        text_in_dims: width of the text encoder's tokens (768).
        drop_path_rate: stochastic depth of every layer (0.1).
        dropout: hidden dropout (0.1 as BERT).
        attn_drop: attention-weight dropout (0.1 as BERT).
        moe_cfg: conditional-MoE kwargs (:data:`DEFAULT_MOE_CFG`); None for
            the dense decoder of the ablation.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 *,
                 embed_dims: int = 768,
                 num_layers: int = 6,
                 num_heads: int = 12,
                 feedforward_channels: int = 3072,
                 image_in_dims: int = 256,
                 text_in_dims: int = 768,
                 drop_path_rate: float = 0.1,
                 dropout: float = 0.1,
                 attn_drop: float = 0.1,
                 moe_cfg: Optional[dict] = DEFAULT_MOE_CFG,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.with_moe = moe_cfg is not None
        self.image_proj = nn.Linear(image_in_dims, embed_dims) if (
            image_in_dims != embed_dims) else nn.Identity()
        self.text_proj = nn.Linear(text_in_dims, embed_dims) if (
            text_in_dims != embed_dims) else nn.Identity()
        self.modality_embed = nn.Embedding(len(MODALITIES), embed_dims)
        self.spe_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.layers = nn.ModuleList([
            UnifiedDecoderLayer(embed_dims, num_heads, feedforward_channels,
                                drop_path_rate, dropout, attn_drop,
                                None if moe_cfg is None else dict(moe_cfg))
            for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(embed_dims)
        self._attribute_rows = {
            name: i
            for i, name in enumerate(MOE_ATTRIBUTES)
        }
        self.register_buffer(
            'attribute_table',
            torch.tensor(list(MOE_ATTRIBUTES.values()), dtype=torch.float),
            persistent=False)
        self.apply(self._init_module)
        nn.init.trunc_normal_(self.spe_token, std=0.02)

    @staticmethod
    def _init_module(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def _project(self, segment: TokenSegment) -> Tensor:
        """(B, L, C) -> (B, L, D) with the modality embedding added."""
        proj = self.image_proj if segment.modality == 'image' else (
            self.text_proj)
        modality = MODALITIES.index(segment.modality)
        return proj(segment.tokens) + self.modality_embed.weight[modality]

    def forward(self,
                segments: Sequence[TokenSegment],
                cache: Optional[DecoderCache] = None,
                use_cache: bool = False) -> DecoderOutput:
        """Decode ``[<SPE>; segments]``, or continue a cached sequence.

        Args:
            segments (Sequence[TokenSegment]): the input segments, all with
                batch size B; with ``cache``, exactly one segment of new
                tokens that continues the cache's last, causal segment.
            cache (DecoderCache, optional): the state after the earlier
                tokens.
            use_cache: also return the cache (always with ``cache``).

        Returns:
            DecoderOutput: see there.
        """
        if not segments:
            raise ValueError('UnifiedDecoder needs at least one segment')
        for seg in segments:
            check_attribute(seg.attribute)
        if cache is not None:
            return self._forward_step(segments, cache)
        return self._forward_full(segments, use_cache)

    def _run_layers(self, x: Tensor, spans: List[Tuple[int, int, int]],
                    attn_mask: Optional[Tensor],
                    cache: Optional[DecoderCache], keep_kv: bool):
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            past = None if cache is None else (cache.keys[i],
                                               cache.values[i])
            x, (k, v) = layer(x, spans, self.attribute_table, attn_mask,
                              past)
            if keep_kv:
                keys.append(k)
                values.append(v)
        return self.norm(x), keys, values

    def _forward_full(self, segments: Sequence[TokenSegment],
                      use_cache: bool) -> DecoderOutput:
        bsz = segments[0].tokens.shape[0]
        tokens = [self.spe_token.expand(bsz, -1, -1).to(
            segments[0].tokens.dtype)]
        tokens += [self._project(seg) for seg in segments]
        x = torch.cat(tokens, dim=1)
        device = x.device

        lengths = [seg.tokens.shape[1] for seg in segments]
        lengths[0] += 1  # <SPE> belongs to the first segment's route
        spans, out_spans, start = [], [], 0
        for seg, n in zip(segments, lengths):
            row = self._attribute_rows[seg.attribute]
            spans.append((start, start + n, row))
            out_spans.append((start + (1 if start == 0 else 0), start + n))
            start = start + n  # not in place: n is a tensor under jit.trace
        if any(seg.tokens.shape[0] != bsz for seg in segments):
            raise ValueError('segments have different batch sizes: '
                             f'{[seg.tokens.shape[0] for seg in segments]}')

        key_padding = None
        if any(seg.padding_mask is not None for seg in segments):
            pads = [torch.zeros(bsz, 1, dtype=torch.bool, device=device)]
            pads += [
                seg.padding_mask.bool() if seg.padding_mask is not None else
                torch.zeros(bsz, seg.tokens.shape[1], dtype=torch.bool,
                            device=device) for seg in segments
            ]
            key_padding = torch.cat(pads, dim=1)
        cid = causal_ids(lengths, [seg.causal for seg in segments], device)
        pos = torch.arange(x.shape[1], device=device)
        attn_mask = build_attention_mask(cid, pos, cid, pos, key_padding)

        x, keys, values = self._run_layers(x, spans, attn_mask, None,
                                           use_cache)
        cache = DecoderCache(
            keys=keys,
            values=values,
            causal_id=cid,
            key_padding=key_padding,
            last_attribute=segments[-1].attribute,
            last_modality=segments[-1].modality) if use_cache else None
        return DecoderOutput(x, out_spans, cache)

    def _forward_step(self, segments: Sequence[TokenSegment],
                      cache: DecoderCache) -> DecoderOutput:
        if len(segments) != 1:
            raise ValueError('an incremental step takes one segment, got '
                             f'{len(segments)}')
        seg = segments[0]
        if (seg.attribute != cache.last_attribute
                or seg.modality != cache.last_modality):
            raise ValueError(
                f'the new tokens ({seg.modality}, {seg.attribute}) must '
                f'continue the cached last segment ({cache.last_modality}, '
                f'{cache.last_attribute})')
        last_cid = int(cache.causal_id[-1])
        if last_cid < 0:
            raise ValueError('only a causal segment can be continued '
                             'token by token')
        x = self._project(seg)
        bsz, num_new, _ = x.shape
        device = x.device
        past_len = cache.length
        new_cid = torch.full((num_new, ),
                             last_cid,
                             dtype=torch.long,
                             device=device)
        key_cid = torch.cat([cache.causal_id, new_cid])
        key_pos = torch.arange(past_len + num_new, device=device)
        key_padding = None
        if cache.key_padding is not None or seg.padding_mask is not None:
            old = cache.key_padding if cache.key_padding is not None else (
                torch.zeros(bsz, past_len, dtype=torch.bool, device=device))
            new = torch.zeros(bsz, num_new, dtype=torch.bool, device=device)
            if seg.padding_mask is not None:
                new = seg.padding_mask.bool()
            key_padding = torch.cat([old, new], dim=1)
        attn_mask = build_attention_mask(new_cid, key_pos[past_len:], key_cid,
                                         key_pos, key_padding)
        spans = [(0, num_new, self._attribute_rows[seg.attribute])]
        x, keys, values = self._run_layers(x, spans, attn_mask, cache, True)
        new_cache = DecoderCache(
            keys=keys,
            values=values,
            causal_id=key_cid,
            key_padding=key_padding,
            last_attribute=cache.last_attribute,
            last_modality=cache.last_modality)
        return DecoderOutput(x, [(0, num_new)], new_cache)
