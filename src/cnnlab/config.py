"""Configuration files and overrides for dataclass configs (``--config FILE``: YAML or TOML).

The keys are the dataclass's field names (``batch_size`` or ``batch-size``); a file may also nest them
in one table named after the command (``[train]``). Precedence: the dataclass defaults, then the file,
then the command-line flags. Values are checked against the field types; an unknown key or a value of
the wrong type is a one-line :class:`~cnnlab.errors.CnnlabError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CnnlabError(f"config file {p} is not UTF-8 text") from None
    except OSError as exc:
        raise CnnlabError(f"cannot read config file {p}: {exc.strerror or exc}") from None
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


def build_config(config_cls, config=None, overrides: dict | None = None):
    """A ``config_cls`` from a config object, a dict of its fields or ``None`` (the defaults), with
    ``overrides`` applied; every value is type-checked (:func:`apply_overrides`)."""
    if config is None:
        config = config_cls()
    elif isinstance(config, dict):
        config = apply_overrides(config_cls(), config)
    elif not isinstance(config, config_cls):
        raise CnnlabError(
            f"expected a {config_cls.__name__}, a dict of its fields or None, got {type(config).__name__}"
        )
    return apply_overrides(config, overrides) if overrides else config


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_number(key: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
                 integer: bool = False, none: bool = False) -> None:
    """A one-line error unless ``value`` is a finite number (an int with ``integer``) in the range;
    ``none``: ``None`` is allowed (unset). Zero is a value like any other, never "unset"."""
    if value is None and none:
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (not integer or isinstance(value, int))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else (f"< {high}" if high_open else f"<= {high}")
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise CnnlabError(f"{flag(key)} must be {kind}{' ' + bounds if bounds else ''}, got {value!r}")


def check_choice(key: str, value, choices) -> None:
    if value not in choices:
        raise CnnlabError(f"{flag(key)} {value!r} is not one of {', '.join(map(str, choices))}")


def apply_overrides(config, values: dict, origin: str = "config"):
    """A copy of dataclass ``config`` with ``values`` set, each checked against its field's type."""
    if not isinstance(values, dict):
        raise CnnlabError(f"{origin} must be a mapping of keys to values, got {type(values).__name__}")
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
        options = [a for a in args if a is not type(None)]
        if len(options) > 1:  # e.g. float | str (a number or a word such as "auto"): the first that fits
            return _first_fit(value, options, key)
        hint = options[0]
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
    except (TypeError, ValueError, OverflowError):
        name = getattr(hint, "__name__", str(hint))
        raise CnnlabError(f"{key} must be {name}, got {value!r}") from None


def _first_fit(value, options: list, key: str):
    for option in options[:-1]:
        try:
            return coerce(value, option, key)
        except CnnlabError:
            continue
    return coerce(value, options[-1], key)


def field_docs(config_cls) -> str:
    """The fields of a config dataclass as text lines ``name = default  # comment`` (the comment of
    the field's line in the source, which states its meaning and unit), for docstrings and ``help``."""
    import inspect
    import re

    comments: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s{4}(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", source, re.MULTILINE):
            comments[m.group(1)] = m.group(2).strip()
    lines = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        note = f"  # {comments[f.name]}" if f.name in comments else ""
        lines.append(f"    {f.name} = {default!r}{note}")
    return "\n".join(lines)


def document(function, config_cls) -> None:
    """Append the fields of ``config_cls`` to ``function``'s docstring (what ``help`` shows)."""
    function.__doc__ = (function.__doc__ or "") + (
        f"\n\n    Settings ({config_cls.__name__} fields, also keyword arguments):\n\n"
        + field_docs(config_cls)
        + "\n"
    )
