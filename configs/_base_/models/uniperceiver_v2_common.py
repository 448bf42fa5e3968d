# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# What every Uni-Perceiver v2 of the paper shares (Sec. 4, 5.2, App. B);
# uniperceiver_v2_{r50,swin-b}.py add the image encoder f_image and the
# image normalisation its backbone was pre-trained with.
#   f_text  RoBERTa-base (Hugging Face), pre-trained, tuned jointly
#   g       6 BERT-base layers (768 wide, 12 heads, FFN 3072), conditional
#           MoE in every FFN (8 experts, top-2), stochastic depth 0.1,
#           randomly initialised
#   heads   the six tasks; class names in the data sets' label order
# RoBERTa is read from the local Hugging Face cache, or from a local folder
# with ``model.text_encoder.name_or_path='/path/to/roberta-base'``
# (config.json, the tokenizer files and model.safetensors or
# pytorch_model.bin); nothing is downloaded unless the text encoder gets
# ``local_files_only=False``.
_base_ = ['./uniperceiver_v2_classes.py']

model = dict(
    type='UniPerceiverV2',
    text_encoder=dict(
        type='HFTextEncoder',
        name_or_path='roberta-base',
        load_pretrained=True,
        # Uni-Perceiver v1's longest texts (Books&Wiki MLM: 128 tokens);
        # captions and class names are far shorter (padding is per batch)
        max_length=128),
    decoder=dict(
        type='UnifiedDecoder',
        embed_dims=768,
        num_layers=6,
        num_heads=12,
        feedforward_channels=3072,
        image_in_dims=256,  # d of the image encoder's tokens
        drop_path_rate=0.1,
        dropout=0.1,
        attn_drop=0.1,
        moe_cfg=dict(num_experts=8, top_k=2, noise_std=1.0)),
    tasks=dict(
        classification=dict(
            type='ClassificationTask', classes={{_base_.imagenet_classes}}),
        detection=dict(
            type='DetectionTask',
            classes={{_base_.coco_classes}},
            num_results=100),
        instance_segmentation=dict(
            type='InstanceSegmentationTask',
            classes={{_base_.coco_classes}},
            num_results=100),
        # v1 decodes COCO captions with beam 2 and at most 21 tokens
        captioning=dict(type='CaptioningTask', beam_size=2, max_length=21),
        retrieval=dict(type='RetrievalTask', gather=True),
        mlm=dict(type='MLMTask', mask_prob=0.15)),
    # in distributed training each GPU encodes 1/world_size of the class
    # names and of the 50,265 vocabulary targets and the GPUs gather the
    # embeddings with their gradient (exact; docs/benchmark.md "Paper-scale
    # step cost"); False: every GPU encodes all of them
    shard_targets=True)
