# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The config stored in a checkpoint, read as data.

mmengine's Runner saves ``cfg.pretty_text`` in ``meta.cfg`` (and in
``message_hub.runtime_info.cfg``); mmengine's inferencer turns it back into a
config with ``Config.fromstring``, which *executes* it as a Python file. A
checkpoint from elsewhere could thus run any code. :func:`config_from_text`
instead parses the text with :mod:`ast` and accepts only what
``pretty_text`` writes::

    name = <value>        one assignment per top-level statement
    <value> :=  'str' | 1 | -2.5 | True | None | inf | nan
             |  [<value>, ...] | (<value>, ...) | {<value>: <value>, ...}
             |  dict(key=<value>, ...) | dict({<value>: <value>, ...})

Anything else (a call other than ``dict(...)``, a name, an import, an
attribute, an operator) is refused with :class:`UnsafeConfigError`, which
names the line and tells the user to pass the config file.
``custom_imports`` of such a config may only name modules of the OpenMMLab
packages and mmupv2 (importing a module runs it).
"""
import ast
from typing import Any, Mapping, Optional

from mmengine.config import Config

#: Packages whose modules a stored config's ``custom_imports`` may import.
TRUSTED_IMPORT_PACKAGES = ('mmupv2', 'mmdet', 'mmpretrain', 'mmengine',
                           'mmcv')
_NAMES = {'inf': float('inf'), 'nan': float('nan')}


class UnsafeConfigError(ValueError):
    """A stored config is not plain data (it would have to be executed)."""


def _refuse(source: str, node: ast.AST, what: str) -> UnsafeConfigError:
    line = getattr(node, 'lineno', '?')
    return UnsafeConfigError(
        f'{source}: line {line} of the stored config is {what}, not plain '
        'data; a config stored in a checkpoint is never executed. Pass the '
        'config file instead (tools: the CONFIG argument; '
        'UniPerceiverInferencer(model=CONFIG, weights=...)).')


def _literal(node: ast.AST, source: str) -> Any:
    """The value of a data-only expression node."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(
            node.op, (ast.USub, ast.UAdd)) and isinstance(
                node.operand, ast.Constant) and isinstance(
                    node.operand.value, (int, float, complex)):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(e, source) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e, source) for e in node.elts)
    if isinstance(node, ast.Set):
        return {_literal(e, source) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _refuse(source, node, 'a dict with ** unpacking')
        return {
            _literal(k, source): _literal(v, source)
            for k, v in zip(node.keys, node.values)
        }
    if isinstance(node, ast.Call) and isinstance(
            node.func, ast.Name) and node.func.id == 'dict':
        # pretty_text writes dict({'a.b': ...}) for keys that are not names
        if len(node.args) > 1 or any(k.arg is None for k in node.keywords) \
                or (node.args and not isinstance(node.args[0], ast.Dict)):
            raise _refuse(source, node, 'a dict(...) call other than '
                          'dict(key=...) or dict({...})')
        out = _literal(node.args[0], source) if node.args else {}
        out.update((k.arg, _literal(k.value, source)) for k in node.keywords)
        return out
    what = type(node).__name__
    if isinstance(node, ast.Call):
        what = f'a call of {ast.unparse(node.func)}(...)'
    elif isinstance(node, (ast.Name, ast.Attribute)):
        what = f'a reference to {ast.unparse(node)}'
    raise _refuse(source, node, f'an expression ({what})')


def config_from_text(text: str, source: str = 'the checkpoint') -> Config:
    """Parse a stored config (``pretty_text``) as data.

    Args:
        text: the config text.
        source: what messages call it (e.g. the checkpoint's path).

    Returns:
        Config: the parsed config (no file name).

    Raises:
        UnsafeConfigError: the text is not assignments of plain data, or
            ``custom_imports`` names a module outside
            :data:`TRUSTED_IMPORT_PACKAGES`.
    """
    if not isinstance(text, str):
        raise UnsafeConfigError(
            f'{source}: the stored config is a {type(text).__name__}, not '
            'text; pass the config file instead')
    try:
        tree = ast.parse(text, mode='exec')
    except SyntaxError as e:
        raise UnsafeConfigError(
            f'{source}: the stored config does not parse ({e.msg}, line '
            f'{e.lineno}); pass the config file instead') from None
    cfg = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise _refuse(source, stmt,
                          f'a statement ({type(stmt).__name__})')
        cfg[stmt.targets[0].id] = _literal(stmt.value, source)
    _check_imports(cfg.get('custom_imports'), source)
    return Config(cfg)


def _check_imports(custom_imports: Optional[Mapping], source: str) -> None:
    if not custom_imports:
        return
    imports = custom_imports.get('imports', []) if isinstance(
        custom_imports, Mapping) else custom_imports
    if isinstance(imports, str):
        imports = [imports]
    for name in imports:
        top = str(name).split('.')[0]
        if top not in TRUSTED_IMPORT_PACKAGES:
            raise UnsafeConfigError(
                f'{source}: the stored config imports {name!r} '
                '(custom_imports); only modules of '
                f'{", ".join(TRUSTED_IMPORT_PACKAGES)} are imported from a '
                'checkpoint. Pass the config file instead.')


def config_from_checkpoint(checkpoint: Mapping,
                           source: str = 'the checkpoint') -> Config:
    """The config an mmengine Runner stored in ``checkpoint``
    (``meta.cfg``, else ``message_hub.runtime_info.cfg``), parsed as data
    by :func:`config_from_text`.

    Raises:
        KeyError: the checkpoint stores no config (the message says to pass
            the config file).
        UnsafeConfigError: see :func:`config_from_text`.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    text = (meta or {}).get('cfg')
    if text is None:
        hub = checkpoint.get('message_hub') if isinstance(
            checkpoint, Mapping) else None
        text = ((hub or {}).get('runtime_info') or {}).get('cfg')
    if text is None:
        raise KeyError(
            f'{source} stores no config (meta.cfg); pass the config file')
    return config_from_text(text, source)
