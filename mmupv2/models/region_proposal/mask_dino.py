# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The binary (objectness-only) Mask-DINO region proposal network."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.models.detectors import DeformableDETR
from mmdet.models.layers import MLP, SinePositionalEncoding
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule, bias_init_with_prob
from torch import Tensor, nn

from mmupv2.models.layers import (
    DeformableDinoDecoder,
    DeformableEncoder,
    padding_masks,
    valid_sizes,
)
from mmupv2.registry import MODELS

from .denoising import BinaryCdnQueryGenerator
from .mask_branch import MaskFeatureBranch
from .outputs import ProposalNetworkOutput, ProposalPredictions


@MODELS.register_module()
class BinaryMaskDINO(BaseModule):
    """Mask DINO with one class, "object": the region proposal network of
    Uni-Perceiver v2 (paper Sec. 4.1, Appendix A-B, Table 7).

    Built from mmdet's DINO: the Deformable-DETR encoder, DINO's decoder
    (iterative box refinement, "look forward twice"), its query selection
    and its contrastive denoising; the mask branch is Mask2Former's / Mask
    DINO's dot product of ``MLP(q)`` with a per-pixel embedding (Eq. 8).
    The forward is mmdet's four steps. Shapes (B images; d = embed_dims;
    levels l = 1..4 at strides 8, 16, 32, 64 with S = sum h_l * w_l tokens;
    N = num_queries; D = denoising queries, training only; L = decoder
    layers)::

        mlvl_feats 4 x (B, d, h_l, w_l)          pixel_feat (B, d, H/4, W/4)
          |                                                 |
          | pre_transformer: flatten, sine position +      |
          | level embedding, padding masks, valid ratios    |
          v                                                 |
        feat (B, S, d) --forward_encoder (deformable)--> memory (B, S, d)
          |                                                 |
          | pre_decoder:                                    v
          |   MaskFeatureBranch(pixel_feat, memory level 1) -> mask_feat
          |                                        (B, d, H/4, W/4)
          |   objectness (B, S) and box (B, S, 4) of every memory token
          |   top-N by objectness: reference boxes (B, N, 4) and
          |   content query_embedding + selected memory (B, N, d)
          |   encoder predictions of those N (intermediate supervision)
          |   training: D CDN queries in front, attention mask (D+N, D+N)
          v
        query (B, D+N, d) --forward_decoder (L layers, box refinement)-->
        hidden_states (L, B, D+N, d), references (L+1, B, D+N, 4)
          |
          | forward_heads: per layer objectness (B, D+N), box (B, D+N, 4) and
          | mask = MLP(q) . mask_feat (B, D+N, H/4, W/4)
          v
        ProposalNetworkOutput (query = q_sem (B, N, d), per-layer and
        encoder predictions, denoising predictions)

    Choices where the paper is silent (it says the network "mainly follows
    Mask DINO"):

    - Objectness, box and mask-embedding heads are shared by the encoder
      output and every decoder layer (Mask DINO; mmdet's DINO uses one head
      per layer). The box head is a 3-layer MLP, as in both.
    - Decoder content queries: the paper adds the selected encoder features
      to N learned queries; the features are detached (as Mask DINO's
      ``tgt``), the learned queries are mmdet DINO's ``query_embedding``.
    - Encoder tokens in padding or at the image border (mmdet gives them
      infinite proposals) are never selected while valid tokens remain.
    - Initial reference boxes are the selected encoder boxes (the paper's
      "locations serve as the initial guess"), without Mask DINO's
      mask-enhanced box initialisation.
    - Without ``for_loss`` (inference) only the last decoder layer is
      predicted, masks included; the others only feed the losses.

    Args:
        embed_dims (int): hidden dimension d (256).
        num_levels (int): feature levels of the transformer (4).
        num_queries (int): N, 300 for ResNet-50 and 900 for Swin.
        num_encoder_layers (int): deformable encoder layers (6).
        num_decoder_layers (int): deformable decoder layers (6).
        num_heads (int): attention heads (8).
        encoder_points (int): sampling points per head and level in the
            encoder (4).
        decoder_points (int): same in the decoder (4).
        feedforward_channels (int): FFN width (2048).
        dropout (float): dropout of attention and FFN (0.0).
        mask_dims (int, optional): mask embedding channels; defaults to d.
        num_groups (int): GroupNorm groups of the mask branch (32).
        dn_cfg (dict, optional): :class:`BinaryCdnQueryGenerator` arguments
            other than ``embed_dims`` / ``num_matching_queries``; defaults
            to Table 7's ``label_noise_scale=0.5, box_noise_scale=1.0``
            with DINO's grouping (up to 100 denoising queries).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    # Reused unchanged from mmdet's Deformable DETR: they read
    # ``encoder``, ``memory_trans_fc`` and ``memory_trans_norm``, which this
    # class defines under the same names.
    forward_encoder = DeformableDETR.forward_encoder
    gen_encoder_output_proposals = DeformableDETR.gen_encoder_output_proposals
    get_valid_ratio = staticmethod(DeformableDETR.get_valid_ratio)

    def __init__(self,
                 *,
                 embed_dims: int = 256,
                 num_levels: int = 4,
                 num_queries: int = 300,
                 num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6,
                 num_heads: int = 8,
                 encoder_points: int = 4,
                 decoder_points: int = 4,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.0,
                 mask_dims: Optional[int] = None,
                 num_groups: int = 32,
                 dn_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % 2 != 0:
            raise ValueError(f'embed_dims must be even, got {embed_dims}')
        self.embed_dims = embed_dims
        self.num_levels = num_levels
        self.num_queries = num_queries
        ffn_cfg = dict(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            ffn_drop=dropout)
        self.positional_encoding = SinePositionalEncoding(
            num_feats=embed_dims // 2, normalize=True, offset=0.0,
            temperature=20)  # DINO's
        self.encoder = DeformableEncoder(
            num_layers=num_encoder_layers,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=embed_dims, num_heads=num_heads,
                    num_levels=num_levels, num_points=encoder_points,
                    dropout=dropout),
                ffn_cfg=ffn_cfg))
        self.decoder = DeformableDinoDecoder(
            num_layers=num_decoder_layers,
            return_intermediate=True,
            post_norm_cfg=None,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=embed_dims, num_heads=num_heads,
                    dropout=dropout),
                cross_attn_cfg=dict(
                    embed_dims=embed_dims, num_heads=num_heads,
                    num_levels=num_levels, num_points=decoder_points,
                    dropout=dropout),
                ffn_cfg=ffn_cfg))
        # drawn here too (init_weights redraws it): a model used without
        # init_weights, e.g. a random-init inferencer, must not read
        # uninitialised memory
        self.level_embed = nn.Parameter(torch.randn(num_levels, embed_dims))
        self.memory_trans_fc = nn.Linear(embed_dims, embed_dims)
        self.memory_trans_norm = nn.LayerNorm(embed_dims)
        self.query_embedding = nn.Embedding(num_queries, embed_dims)
        self.mask_branch = MaskFeatureBranch(
            embed_dims=embed_dims, mask_dims=mask_dims, num_groups=num_groups)
        self.cls_branch = nn.Linear(embed_dims, 1)
        self.reg_branch = MLP(embed_dims, embed_dims, 4, 3)
        self.mask_embed = MLP(embed_dims, embed_dims, mask_dims or embed_dims,
                              3)
        dn_cfg = {
            'label_noise_scale': 0.5,
            'box_noise_scale': 1.0,
            **(dn_cfg or {})
        }
        self.dn_query_generator = BinaryCdnQueryGenerator(
            embed_dims=embed_dims, num_matching_queries=num_queries,
            **dn_cfg)

    def init_weights(self) -> None:
        """DINO's initialisation (mmdet), plus DETR's head initialisation:
        objectness bias for a prior of 0.01, zero last box layer."""
        super().init_weights()
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()
        nn.init.xavier_uniform_(self.memory_trans_fc.weight)
        nn.init.xavier_uniform_(self.query_embedding.weight)
        nn.init.normal_(self.level_embed)
        nn.init.constant_(self.cls_branch.bias, bias_init_with_prob(0.01))
        nn.init.zeros_(self.reg_branch.layers[-1].weight)
        nn.init.zeros_(self.reg_branch.layers[-1].bias)

    def forward(self,
                mlvl_feats: Sequence[Tensor],
                pixel_feat: Tensor,
                batch_data_samples: SampleList,
                for_loss: bool = False) -> ProposalNetworkOutput:
        """Propose N objects per image.

        Args:
            mlvl_feats (Sequence[Tensor]): ``num_levels`` maps (B, d, h_l,
                w_l), strides 8, 16, 32, 64.
            pixel_feat (Tensor): (B, d, H/4, W/4) the stride-4 map.
            batch_data_samples (list[DetDataSample]): B samples with
                ``batch_input_shape`` and ``img_shape`` meta information
                (for the padding masks) and, with ``for_loss``,
                ``gt_instances.bboxes`` (for the denoising queries).
            for_loss (bool): also return what the losses need: encoder
                predictions, every decoder layer, denoising queries.

        Returns:
            ProposalNetworkOutput: see its docstring.
        """
        if len(mlvl_feats) != self.num_levels:
            raise ValueError(f'expected {self.num_levels} feature levels, '
                             f'got {len(mlvl_feats)}')
        encoder_inputs, decoder_inputs = self.pre_transformer(
            mlvl_feats, batch_data_samples)
        encoder_outputs = self.forward_encoder(**encoder_inputs)
        decoder_in, head_inputs = self.pre_decoder(
            **encoder_outputs,
            pixel_feat=pixel_feat,
            batch_data_samples=batch_data_samples,
            for_loss=for_loss)
        decoder_inputs.update(decoder_in)
        decoder_outputs = self.forward_decoder(**decoder_inputs)
        return self.forward_heads(
            **decoder_outputs, **head_inputs, for_loss=for_loss)

    def pre_transformer(self, mlvl_feats: Sequence[Tensor],
                        batch_data_samples: SampleList) -> Tuple[Dict, Dict]:
        """mmdet's ``DeformableDETR.pre_transformer`` (flatten the levels,
        sine positions + level embedding, padding masks, valid ratios) with
        each level's padding mask from
        :func:`~mmupv2.models.layers.padding_masks` instead of a
        nearest-neighbour resize of the pixel mask, which counts a stride-64
        cell that is mostly padding as part of the image when the batch is
        not a multiple of 64 -- so an image's queries changed with its
        batch.

        Args:
            mlvl_feats (Sequence[Tensor]): ``num_levels`` maps (B, d, h_l,
                w_l).
            batch_data_samples (list[DetDataSample]): with ``img_shape``
                and ``batch_input_shape``.

        Returns:
            tuple[dict, dict]: ``forward_encoder`` inputs (``feat`` (B, S,
            d), ``feat_mask`` (B, S) or None, ``feat_pos``,
            ``spatial_shapes`` (num_levels, 2), ``level_start_index``,
            ``valid_ratios`` (B, num_levels, 2)) and the decoder's
            (``memory_mask``, ``spatial_shapes``, ``level_start_index``,
            ``valid_ratios``).
        """
        batch_shape = batch_data_samples[0].batch_input_shape
        img_shapes = [s.img_shape[:2] for s in batch_data_samples]
        padded = any(
            tuple(shape) != tuple(batch_shape) for shape in img_shapes)
        feats, masks, positions, shapes = [], [], [], []
        for level, feat in enumerate(mlvl_feats):
            mask = padding_masks(img_shapes, batch_shape, feat.shape[-2:],
                                 feat.device) if padded else None
            position = self.positional_encoding(mask) if padded else \
                self.positional_encoding(None, input=feat)
            feats.append(feat.flatten(2).transpose(1, 2))
            positions.append(
                position.flatten(2).transpose(1, 2) +
                self.level_embed[level].view(1, 1, -1))
            masks.append(mask)
            shapes.append(feat.shape[-2:])
        spatial_shapes = torch.as_tensor(
            shapes, dtype=torch.long, device=mlvl_feats[0].device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(
            (1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
        if padded:
            mask_flatten = torch.cat([m.flatten(1) for m in masks], 1)
            valid_ratios = torch.stack(
                [self.get_valid_ratio(m) for m in masks], 1)
        else:
            mask_flatten = None
            valid_ratios = mlvl_feats[0].new_ones(
                len(mlvl_feats[0]), len(mlvl_feats), 2)
        encoder_inputs = dict(
            feat=torch.cat(feats, 1),
            feat_mask=mask_flatten,
            feat_pos=torch.cat(positions, 1),
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios)
        decoder_inputs = dict(
            memory_mask=mask_flatten,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios)
        return encoder_inputs, decoder_inputs

    def pre_decoder(self, memory: Tensor, memory_mask: Optional[Tensor],
                    spatial_shapes: Tensor, pixel_feat: Tensor,
                    batch_data_samples: SampleList,
                    for_loss: bool) -> Tuple[Dict, Dict]:
        """Select the top-N encoder tokens as decoder queries (two-stage
        query selection), compute the mask features, add the denoising
        queries.

        Args:
            memory (Tensor): (B, S, d) encoder output.
            memory_mask (Tensor, optional): (B, S) bool, True = padding;
                None when no image of the batch is padded.
            spatial_shapes (Tensor): (num_levels, 2) (h, w) per level.
            pixel_feat (Tensor): (B, d, H/4, W/4) the stride-4 map.
            batch_data_samples (list[DetDataSample]): for the denoising
                queries.
            for_loss (bool): add denoising queries and encoder predictions.

        Returns:
            tuple[dict, dict]: ``forward_decoder`` inputs (``query`` (B,
            D+N, d), ``memory``, ``reference_points`` (B, D+N, 4) and
            ``dn_mask`` (D+N, D+N) or None) and ``forward_heads`` inputs
            (``mask_features`` (B, d, H/4, W/4), ``enc_predictions``,
            ``dn_meta``).
        """
        bs, num_tokens, _ = memory.shape
        if num_tokens < self.num_queries:
            raise ValueError(
                f'the feature maps have {num_tokens} tokens, fewer than '
                f'num_queries={self.num_queries}; use larger images or '
                'fewer queries')
        h1, w1 = spatial_shapes[0].tolist()
        enc_feat = memory[:, :h1 * w1].transpose(1, 2).reshape(
            bs, self.embed_dims, h1, w1)
        mask_features = self.mask_branch(
            pixel_feat, enc_feat,
            valid_sizes([s.img_shape[:2] for s in batch_data_samples],
                        batch_data_samples[0].batch_input_shape, (h1, w1)))

        output_memory, output_proposals = self.gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        enc_objectness = self.cls_branch(output_memory)[..., 0]
        enc_coords_unact = self.reg_branch(output_memory) + output_proposals
        selectable = enc_objectness.masked_fill(
            ~torch.isfinite(output_proposals).all(-1), float('-inf'))
        topk = torch.topk(selectable, k=self.num_queries, dim=1)[1]
        topk_objectness = enc_objectness.gather(1, topk)
        topk_coords_unact = enc_coords_unact.gather(
            1, topk[..., None].expand(-1, -1, 4))
        topk_memory = output_memory.gather(
            1, topk[..., None].expand(-1, -1, self.embed_dims))

        query = self.query_embedding.weight[None] + topk_memory.detach()
        reference = topk_coords_unact.detach()
        dn_mask = dn_meta = enc_predictions = None
        if for_loss:
            dn_label_query, dn_bbox_query, dn_mask, dn_meta = \
                self.dn_query_generator(batch_data_samples)
            query = torch.cat([dn_label_query, query], dim=1)
            reference = torch.cat([dn_bbox_query, reference], dim=1)
            enc_predictions = ProposalPredictions(
                objectness=topk_objectness,
                boxes=topk_coords_unact.sigmoid(),
                masks=self.mask_logits(
                    self.decoder.norm(topk_memory), mask_features))
        decoder_inputs = dict(
            query=query,
            memory=memory,
            reference_points=reference.sigmoid(),
            dn_mask=dn_mask)
        head_inputs = dict(
            mask_features=mask_features,
            enc_predictions=enc_predictions,
            dn_meta=dn_meta)
        return decoder_inputs, head_inputs

    def forward_decoder(self,
                        query: Tensor,
                        memory: Tensor,
                        memory_mask: Optional[Tensor],
                        reference_points: Tensor,
                        spatial_shapes: Tensor,
                        level_start_index: Tensor,
                        valid_ratios: Tensor,
                        dn_mask: Optional[Tensor] = None) -> Dict:
        """Run mmdet's DINO decoder with the shared box head refining the
        reference boxes after every layer.

        Args:
            query (Tensor): (B, D+N, d) content queries.
            memory (Tensor): (B, S, d) encoder output.
            memory_mask (Tensor, optional): (B, S) bool, True = padding.
            reference_points (Tensor): (B, D+N, 4) initial boxes, normalised
                (cx, cy, w, h).
            spatial_shapes (Tensor): (num_levels, 2).
            level_start_index (Tensor): (num_levels,).
            valid_ratios (Tensor): (B, num_levels, 2).
            dn_mask (Tensor, optional): (D+N, D+N) bool self-attention mask,
                True = may not attend.

        Returns:
            dict: ``hidden_states`` (L, B, D+N, d), normalised, and
            ``references`` (L+1, B, D+N, 4), the boxes each layer refined.
        """
        hidden_states, references = self.decoder(
            query=query,
            value=memory,
            key_padding_mask=memory_mask,
            self_attn_mask=dn_mask,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            valid_ratios=valid_ratios,
            reg_branches=[self.reg_branch] * self.decoder.num_layers)
        if dn_mask is not None and dn_mask.shape[0] == self.num_queries:
            # A batch without ground truth has no denoising query: keep the
            # label embedding in the graph (as mmdet's DINO) so that DDP
            # without find_unused_parameters does not stall.
            hidden_states = hidden_states + \
                0.0 * self.dn_query_generator.label_embedding.weight.sum()
        return dict(hidden_states=hidden_states, references=references)

    def mask_logits(self, hidden: Tensor, mask_features: Tensor) -> Tensor:
        """Mask logits as the dot product of ``MLP(q)`` and the per-pixel
        embedding (Eq. 8, without the final upsampling).

        Args:
            hidden (Tensor): (B, K, d) normalised query states.
            mask_features (Tensor): (B, mask_dims, H/4, W/4).

        Returns:
            Tensor: (B, K, H/4, W/4) mask logits.
        """
        return torch.einsum('bqc,bchw->bqhw', self.mask_embed(hidden),
                            mask_features)

    def layer_predictions(self, hidden: Tensor, reference: Tensor,
                      mask_features: Tensor) -> ProposalPredictions:
        """Objectness, box and mask of one decoder layer's queries.

        Args:
            hidden (Tensor): (B, K, d) normalised states of the layer.
            reference (Tensor): (B, K, 4) the layer's input reference boxes,
                normalised (cx, cy, w, h); the box head predicts the offset
                in logit space (mmdet's ``DeformableDETRHead``).
            mask_features (Tensor): (B, mask_dims, H/4, W/4).

        Returns:
            ProposalPredictions: with K proposals.
        """
        boxes = self.reg_branch(hidden) + inverse_sigmoid(reference)
        return ProposalPredictions(
            objectness=self.cls_branch(hidden)[..., 0],
            boxes=boxes.sigmoid(),
            masks=self.mask_logits(hidden, mask_features))

    def forward_heads(self,
                hidden_states: Tensor,
                references: Tensor,
                mask_features: Tensor,
                enc_predictions: Optional[ProposalPredictions],
                dn_meta: Optional[Dict[str, int]],
                for_loss: bool = False) -> ProposalNetworkOutput:
        """Split denoising from matching queries and predict each layer.

        Args:
            hidden_states (Tensor): (L, B, D+N, d).
            references (Tensor): (L+1, B, D+N, 4).
            mask_features (Tensor): (B, mask_dims, H/4, W/4).
            enc_predictions (ProposalPredictions, optional): of the N
                selected encoder tokens.
            dn_meta (dict, optional): denoising layout (D queries).
            for_loss (bool): predict every layer, not only the last.

        Returns:
            ProposalNetworkOutput: see its docstring.
        """
        num_dn = dn_meta['num_denoising_queries'] if dn_meta else 0
        num_layers = hidden_states.shape[0]
        layers: List[int] = list(
            range(num_layers)) if for_loss else [num_layers - 1]
        decoder, denoising = [], []
        for lid in layers:
            preds = self.layer_predictions(hidden_states[lid],
                                           references[lid], mask_features)
            decoder.append(preds[:, num_dn:])
            denoising.append(preds[:, :num_dn])
        return ProposalNetworkOutput(
            query=hidden_states[-1][:, num_dn:],
            decoder=decoder,
            encoder=enc_predictions,
            denoising=denoising if dn_meta else None,
            dn_meta=dn_meta)
