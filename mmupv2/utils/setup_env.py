# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from mmengine.registry import init_default_scope as _init_scope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmupv2 module that registers something, so that all of
    them are in the registries of :mod:`mmupv2.registry`.

    Configs normally need no call: the registries import their ``locations``
    on first use. Call this in scripts that build modules by name outside a
    config's ``default_scope``.

    Args:
        init_default_scope: make ``'mmupv2'`` the current default scope
            (mmengine's ``init_default_scope``).
    """
    import mmupv2.datasets  # noqa: F401
    import mmupv2.datasets.transforms  # noqa: F401
    import mmupv2.engine  # noqa: F401
    import mmupv2.evaluation  # noqa: F401
    import mmupv2.models  # noqa: F401

    if init_default_scope:
        _init_scope('mmupv2')
