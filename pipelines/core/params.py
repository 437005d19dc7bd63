"""Each stage reads only its own ``params.yaml`` section into a frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    pass


def _check(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(name, value, arg)
            except ParamsError as e:
                errors.append(str(e))
        raise ParamsError("; ".join(errors))
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list | tuple):
            raise ParamsError(f"{name}: expected a list, got {value!r}")
        return tuple(_check(f"{name}[{i}]", v, item) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any:
        return value
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ParamsError(f"{name}: expected {hint.__name__}, got {value!r}")
    return value


def load_section(cls: type[T], section: str, path: str | Path = DEFAULT_PARAMS) -> T:
    """Read ``section`` of a params file into ``cls`` (a frozen dataclass), checking types.

    Unknown or missing keys are errors: defaults live in params.yaml only, so a typo never
    silently falls back to something else.
    """
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if section not in data:
        raise ParamsError(f"{path}: no section {section!r}")
    raw = data[section] or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    missing = sorted(set(fields) - set(raw))
    if unknown or missing:
        raise ParamsError(f"{path} [{section}]: unknown keys {unknown}, missing keys {missing}")
    hints = typing.get_type_hints(cls)
    values = {k: _check(f"{section}.{k}", raw[k], hints[k]) for k in fields}
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate()  # type: ignore[attr-defined]
    return obj
