# Fully sharded data parallel (PyTorch FSDP) with mmengine's FlexibleRunner.
#
# tools/train.py builds mmupv2's multi-task-aware FlexibleRunner for
# runner_type='FlexibleRunner' (see docs/train_test.md). FSDP keeps the
# config's OptimWrapper (AmpOptimWrapper with --amp, sharded grad scaler);
# `use_orig_params=True` keeps the per-parameter groups of paramwise_cfg and
# MT-AdamW. 'full' state dicts are gathered on rank 0, so the checkpoints
# load into a plain Runner (tools/test.py) as any other. MTAdamW's
# `sharded_grads` (each rank holds a gradient shard, the global norm sums
# over ranks) is set by MultiTaskLoop from the wrapped model when training
# starts: True for FULL_SHARD / SHARD_GRAD_OP, False for NO_SHARD (and on
# one process); the hybrid strategies are refused.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        sharding_strategy='FULL_SHARD',
        # wrap every sub-module of >= 10M parameters in its own FSDP unit
        auto_wrap_policy=dict(
            type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy',
            min_num_params=10_000_000),
        use_orig_params=True),
    state_dict_cfg='full')
optim_wrapper = dict(type='OptimWrapper')
