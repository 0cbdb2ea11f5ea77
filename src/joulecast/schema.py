"""Validated, frozen spec types on msgspec: shared constraints and one way to validate data.

Specs (GPUs, coefficients, model architectures) are :class:`msgspec.Struct` classes: typed,
frozen, unknown fields rejected, numeric bounds declared beside each field with
:class:`msgspec.Meta`, cross-field rules in ``__post_init__``. msgspec imports in a few
milliseconds, so a command that only reads shipped specs starts fast. :func:`validate` turns a
mapping into a spec and every failure into one line that names the file and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

from joulecast.errors import JoulecastError, SpecError

#: A float > 0 (e.g. a clock, a bandwidth, a power).
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
#: A float >= 0 (e.g. an energy per event).
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
#: An int > 0 (e.g. a count of SMs or layers).
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
#: An int >= 0.
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]

S = TypeVar("S", bound=msgspec.Struct)

_AT = re.compile(r"^(?P<msg>.*?) - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`$")
_BOUND = re.compile(r"^Expected `(?:float|int)` (?P<op>>=|>|<=|<) (?P<value>[-\d.e+]+)$")
_WORDS = {">": "greater than", ">=": "at least", "<": "less than", "<=": "at most"}


def _non_finite(data: Any, path: str = "") -> str | None:
    """Path of the first NaN or infinite number in plain data, if any."""
    if isinstance(data, float) and not math.isfinite(data):
        return path or "value"
    if isinstance(data, Mapping):
        for key, value in data.items():
            found = _non_finite(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found = _non_finite(value, f"{path}[{i}]")
            if found:
                return found
    return None


def _readable(exc: msgspec.ValidationError) -> str:
    """msgspec's message as ``field: problem`` (``$.a.b`` paths become ``a.b``)."""
    text = str(exc).splitlines()[0]
    m = _AT.match(text)
    msg, path = (m.group("msg"), m.group("path").lstrip(".")) if m else (text, "")
    if m and m.group("key"):
        msg = f"bad key: {msg}"
    bound = _BOUND.match(msg)
    if bound:
        value = float(bound.group("value"))
        msg = f"must be {_WORDS[bound.group('op')]} {value:g}"
    elif msg.startswith("Expected `str` of length >= 1"):
        msg = "must not be empty"
    elif msg.startswith("Object contains unknown field"):
        msg = msg.replace("Object contains unknown field", "unknown field")
    elif msg.startswith("Object missing required field"):
        msg = msg.replace("Object missing required field", "missing required field")
    return f"{path}: {msg}" if path else msg


def validate(cls: type[S], data: Any, origin: str, error: type[JoulecastError] = SpecError) -> S:
    """Build a ``cls`` from plain data, or raise ``error`` with one line.

    Args:
        cls: the spec type.
        data: a mapping (as read from YAML or JSON).
        origin: where the data came from (a file name), the message's prefix.
        error: the :class:`JoulecastError` subclass to raise.

    Raises:
        JoulecastError: ``error`` naming ``origin``, the field and the problem (wrong type, out of
            bounds, NaN or infinite, unknown or missing field, an inconsistent combination).
    """
    if not isinstance(data, Mapping):
        raise error(f"{origin}: expected a mapping of fields")
    bad = _non_finite(data)
    if bad:
        raise error(f"{origin}: {bad}: must be a finite number")
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise error(f"{origin}: {_readable(exc)}") from None


def to_builtins(spec: msgspec.Struct) -> dict[str, Any]:
    """Plain data of a spec (enums as their values), in field order."""
    out = msgspec.to_builtins(spec)
    assert isinstance(out, dict)
    return out
