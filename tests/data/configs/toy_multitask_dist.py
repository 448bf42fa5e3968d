# The toy multi-task run for CPU distributed tests: every rank writes the
# entry and task of each iteration to <work_dir>/rank_tasks/rank<r>.txt
# (tests/test_tools/rank_task_hook.py: importable with the repository
# root on PYTHONPATH, as the tests that run it set).
_base_ = './toy_multitask.py'

custom_imports = dict(
    imports=['mmupv2.testing', 'tests.test_tools.rank_task_hook'],
    allow_failed_imports=False)
custom_hooks = [dict(type='RankTaskRecorderHook')]
# unmixed sampling trains one head per iteration: the others get no gradient
find_unused_parameters = True
