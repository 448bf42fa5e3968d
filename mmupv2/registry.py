# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""mmupv2's registries: children of mmengine's root registries.

Every registry has scope ``'mmupv2'`` and ``locations`` set, so a config with
``default_scope = 'mmupv2'`` builds ``type='UPv2CocoDataset'`` (etc.) without
importing anything by hand: the first lookup imports the listed modules.
Modules of other OpenMMLab packages stay reachable with a scope prefix, e.g.
``type='mmpretrain.ResNet'`` or ``type='mmdet.CocoMetric'``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
)
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import (
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS,
)
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import (
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS,
)
from mmengine.registry import Registry

# Runner, loops and hooks
RUNNERS = Registry(
    'runner', parent=MMENGINE_RUNNERS, locations=['mmupv2.engine.runner'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor',
    parent=MMENGINE_RUNNER_CONSTRUCTORS,
    locations=['mmupv2.engine.runner'])
LOOPS = Registry(
    'loop', parent=MMENGINE_LOOPS, locations=['mmupv2.engine.runner'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, locations=['mmupv2.engine.hooks'])
LOG_PROCESSORS = Registry(
    'log_processor',
    parent=MMENGINE_LOG_PROCESSORS,
    locations=['mmupv2.engine.runner'])

# Data
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['mmupv2.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=['mmupv2.datasets'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    locations=['mmupv2.datasets.transforms'])

# Models
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['mmupv2.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['mmupv2.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=['mmupv2.models'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['mmupv2.models'])

# Optimisation
OPTIMIZERS = Registry(
    'optimizer',
    parent=MMENGINE_OPTIMIZERS,
    locations=['mmupv2.engine.optimizers'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['mmupv2.engine.optimizers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmupv2.engine.optimizers'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['mmupv2.engine.optimizers'])

# Evaluation
METRICS = Registry(
    'metric',
    parent=MMENGINE_METRICS,
    locations=['mmupv2.evaluation.metrics'])
EVALUATOR = Registry(
    'evaluator',
    parent=MMENGINE_EVALUATOR,
    locations=['mmupv2.evaluation'])
