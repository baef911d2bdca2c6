"""Configuration as data: build typed dataclasses from parsed TOML/YAML, naming the bad key.

:func:`from_data` walks a dataclass's type hints and converts a mapping into it. Unknown keys,
missing required keys and wrong types are :class:`~gpt2guard.errors.GuardError` messages that
say where, e.g. ``stages[2].size: expected a string, got 3``. Supported field types: ``str``,
``int``, ``float``, ``bool``, ``datetime.date``, ``X | None``, ``list[X]``, ``dict[str, X]``,
``typing.Literal[...]`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing

from gpt2guard.errors import GuardError

_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dt.date: "a date (YYYY-MM-DD)"}


def _where(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _scalar(tp, value, path: str):
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
    elif isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise GuardError(f"{path}: expected {_NAMES[tp]}, got {value!r}")


def convert(tp, value, path: str):
    """``value`` converted to type ``tp``, or a GuardError naming ``path``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert(inner[0], value, path)
    if origin is typing.Literal:
        if value not in args:
            raise GuardError(f"{path}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is list:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise GuardError(f"{path}: expected a list, got {value!r}")
        return [convert(args[0], v, _where(path, i)) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise GuardError(f"{path}: expected a table of values, got {value!r}")
        return {str(k): convert(args[1], v, _where(path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_data(tp, value, path)
    return _scalar(tp, value, path)


def from_data(cls, data, path: str = ""):
    """An instance of dataclass ``cls`` from a mapping; every error names the key."""
    if not isinstance(data, dict):
        raise GuardError(f"{path or 'top level'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if str(k).replace("-", "_") not in fields]
    if unknown:
        raise GuardError(f"{_where(path, unknown[0])}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        kwargs[name] = convert(hints[name], value, _where(path, key))
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise GuardError(f"{_where(path, missing[0])}: required key is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(path)
    return obj


def to_data(obj):
    """Plain JSON-ready data of a (nested) dataclass: dates as ISO strings."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj
