# DeepSpeed ZeRO-2 with mmengine's FlexibleRunner. Needs the optional
# dependency `deepspeed` (requirements/optional.txt) and CUDA devices.
#
# Precision is DeepSpeed's (bf16 here; `--amp` does not apply). The
# micro batch size is filled in by the runner (the largest batch size of the
# multi-task entries). `zero_allow_untested_optimizer` lets ZeRO wrap
# MT-AdamW, an optimizer DeepSpeed does not ship. Gradient clipping is
# `strategy.gradient_clipping`, not optim_wrapper.clip_grad; MT-AdamW
# normalises every gradient, so clipping changes nothing (DeepSpeed's own
# default is 1.0; the wrapper hands MT-AdamW the norm of the clipped
# gradient either way).
#
# MultiTaskDeepSpeedOptimWrapper is mmengine's DeepSpeedOptimWrapper with
# what MultiTaskLoop calls (optim_context, scale_loss, should_update,
# zero_grad); it hands MT-AdamW the global gradient norm that ZeRO computes
# over all parameter groups and ranks (ZeRO steps MT-AdamW one group's
# partition at a time). ZeRO stages 1 and 2 are supported with MT-AdamW;
# gradient_accumulation_steps must stay 1.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    config=dict(zero_allow_untested_optimizer=True),
    bf16=dict(enabled=True),
    # cast these data_preprocessor outputs to the parameters' dtype
    inputs_to_half=['inputs'],
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=50_000_000,
        reduce_scatter=True,
        reduce_bucket_size=50_000_000,
        overlap_comm=True,
        contiguous_gradients=True))
optim_wrapper = dict(type='MultiTaskDeepSpeedOptimWrapper')
