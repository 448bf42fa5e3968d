# The toy multi-task run for CPU distributed tests: every rank writes the
# entry and task of each iteration to <work_dir>/rank_tasks/rank<r>.txt.
_base_ = './toy_multitask.py'

custom_imports = dict(
    imports=['mmupv2.testing', 'mmupv2.testing.rank_task_hook'],
    allow_failed_imports=False)
custom_hooks = [dict(type='RankTaskRecorderHook')]
# unmixed sampling trains one head per iteration: the others get no gradient
find_unused_parameters = True
