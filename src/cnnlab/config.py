"""Configuration files and overrides for dataclass configs (``--config FILE``: YAML or TOML).

The keys are the dataclass's field names (``batch_size`` or ``batch-size``); a file may also nest them
in one table named after the command (``[train]``). Precedence: the dataclass defaults, then the file,
then the command-line flags. Values are checked against the field types; an unknown key or a value of
the wrong type is a one-line :class:`~cnnlab.errors.CnnlabError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path

from .errors import CnnlabError


def read_config_file(path: str | os.PathLike, section: str | None = None) -> dict:
    """The mapping stored in a ``.yaml``/``.yml``/``.toml``/``.json`` file (one section if nested)."""
    p = Path(path)
    if not p.is_file():
        raise CnnlabError(f"config file {str(p)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        data = _PARSERS[p.suffix.lower()](text)
    except KeyError:
        raise CnnlabError(f"config file {p} must end in .yaml, .yml, .toml or .json") from None
    except Exception as exc:  # each parser has its own error class
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CnnlabError(f"cannot parse config file {p}: {first}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise CnnlabError(f"config file {p} must hold a mapping of keys to values")
    if section and isinstance(data.get(section), dict) and len(data) == 1:
        data = data[section]
    return {k.replace("-", "_"): v for k, v in data.items()}


def _yaml(text: str):
    import yaml

    return yaml.safe_load(text)


def _toml(text: str):
    import tomllib

    return tomllib.loads(text)


_PARSERS = {".yaml": _yaml, ".yml": _yaml, ".toml": _toml, ".json": json.loads}


def apply_overrides(config, values: dict, origin: str = "config"):
    """A copy of dataclass ``config`` with ``values`` set, each checked against its field's type."""
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for key, value in values.items():
        if key not in fields:
            raise CnnlabError(f"unknown {origin} key {key!r}; known keys: {', '.join(sorted(fields))}")
        changes[key] = coerce(value, hints[key], key)
    return dataclasses.replace(config, **changes)


def coerce(value, hint, key: str):
    """``value`` converted to ``hint`` (int, float, bool, str, list[str], their ``| None`` forms)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise CnnlabError(f"{key} must be a list, got {value!r}")
        return [coerce(v, args[0], key) for v in items]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    try:
        if hint is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise TypeError
        if hint in (int, float) and isinstance(value, bool):
            raise TypeError
        return hint(value)
    except (TypeError, ValueError):
        name = getattr(hint, "__name__", str(hint))
        raise CnnlabError(f"{key} must be {name}, got {value!r}") from None
