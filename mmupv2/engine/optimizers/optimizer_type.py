# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Check a config's optimizer type before the run starts.

mmengine's ``DefaultOptimWrapperConstructor`` looks the type up with
``registry.get`` and passes the result, ``None`` for an unknown name, to
``inspect.signature``: a misspelt ``optimizer.type='MTAdamw'`` fails, after
the data and the model are built, with ``TypeError: None is not a callable
object``. :func:`check_optimizer_type` names the key and the close matches
instead.
"""
import difflib
from typing import Any, List, Mapping, Optional

from mmengine.registry import OPTIMIZERS, DefaultScope, Registry


def _registered_names(registry: Registry) -> List[str]:
    """Every name ``registry`` resolves without a scope prefix: its own
    and its parents' (mmengine's: the ``torch.optim`` optimizers)."""
    names = set()
    while registry is not None:
        registry.import_from_location()
        names.update(registry.module_dict)
        registry = registry.parent
    return sorted(names)


def close_names(name: str, names: List[str], n: int = 3) -> List[str]:
    """The registered names closest to ``name`` (case-insensitive), best
    first, as ``difflib.get_close_matches`` finds them."""
    lower = {}
    for candidate in names:
        lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(
        name.lower(), list(lower), n=n, cutoff=0.6)
    return [lower[m] for m in matches]


def check_optimizer_type(optim_wrapper: Optional[Mapping[str, Any]],
                         scope: Optional[str] = None) -> None:
    """Raise a ``KeyError`` naming ``optim_wrapper.optimizer.type`` when it
    is not a registered optimizer.

    Args:
        optim_wrapper: the config's ``optim_wrapper`` (nothing is checked
            without an ``optimizer`` dict whose ``type`` is a string).
        scope: the registry scope to resolve it in (the config's
            ``default_scope``); default: the current one.

    Raises:
        KeyError: the type is not registered; the message lists the close
            matches (``'MTAdamw'`` -> ``'MTAdamW'``) or the known names.
    """
    optimizer = (optim_wrapper or {}).get('optimizer')
    if not isinstance(optimizer, Mapping) or not isinstance(
            optimizer.get('type'), str):
        return
    name = optimizer['type']
    with DefaultScope.overwrite_default_scope(scope):
        with OPTIMIZERS.switch_scope_and_registry(None) as registry:
            if registry.get(name) is not None:
                return
            names = _registered_names(registry)
    guesses = close_names(name.rsplit('.', 1)[-1], names)
    hint = (f'did you mean {" or ".join(repr(g) for g in guesses)}?'
            if guesses else f'registered: {", ".join(names)}.')
    raise KeyError(
        f'optim_wrapper.optimizer.type={name!r} is not a registered '
        f'optimizer (scope {registry.scope!r}); {hint} A custom optimizer '
        'must be registered in OPTIMIZERS and its module imported '
        '(custom_imports).')
