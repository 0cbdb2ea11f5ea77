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

# ---- physical bounds on sizes ------------------------------------------------------------
# Every size a parser accepts is bounded, so that no input can make joulecast loop for hours or
# overflow a float: a bound names what it guards and the message names the bound.

#: Largest single dimension (a width, a count of heads or experts, a sequence, a vocabulary):
#: 2**31, the int32 index range of CUDA kernels' tensor dimensions.
MAX_DIMENSION = 2**31
#: Most layers in one model: 10,000 (the deepest published transformers have a few hundred;
#: graph building is linear in layers, about 100 ms per 1,000).
MAX_LAYERS = 10_000
#: Most elements in one tensor of one op: 2**48 (256 Ti elements, over 1,000 times the memory
#: of any GPU), so that sizes, bytes and FLOPs stay far inside float64.
MAX_ELEMENTS = 2**48

#: A positive size of one dimension, at most :data:`MAX_DIMENSION`.
Dimension = Annotated[int, msgspec.Meta(gt=0, le=MAX_DIMENSION)]
#: A count in [0, :data:`MAX_DIMENSION`] where 0 means "none".
OptionalCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_DIMENSION)]
#: A number of layers, in [1, :data:`MAX_LAYERS`].
LayerCount = Annotated[int, msgspec.Meta(gt=0, le=MAX_LAYERS)]

S = TypeVar("S", bound=msgspec.Struct)

_AT = re.compile(r"^(?P<msg>.*?) - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`$")
_BOUND = re.compile(r"^Expected `(?:float|int)` (?P<op>>=|>|<=|<) (?P<value>[-\d.e+]+)$")
_MAX_MESSAGE = 400  # characters of a validation message (a field name may be a whole file)
_WORDS = {">": "greater than", ">=": "at least", "<": "less than", "<=": "at most"}


def _non_finite(data: Any) -> str | None:
    """Path of the first NaN or infinite number in plain data, if any.

    Iterative, and each container is visited once: YAML aliases can make a small file a
    structure with billions of paths, and deep nesting must not exhaust the stack.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "value"
        if isinstance(value, Mapping | list | tuple):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = (
                [(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()]
                if isinstance(value, Mapping)
                else [(v, f"{path}[{i}]") for i, v in enumerate(value)]
            )
            stack.extend(reversed(items))
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
        shown = f"{int(value):,}" if value.is_integer() and abs(value) < 1e18 else f"{value:g}"
        msg = f"must be {_WORDS[bound.group('op')]} {shown}"
    elif msg.startswith("Expected `str` of length >= 1"):
        msg = "must not be empty"
    elif msg.startswith("Object contains unknown field"):
        msg = msg.replace("Object contains unknown field", "unknown field")
    elif msg.startswith("Object missing required field"):
        msg = msg.replace("Object missing required field", "missing required field")
    return f"{path}: {msg}" if path else msg


def integral(value: Any) -> int | None:
    """``value`` as an int if it is an integer, or a finite float with no fraction (64.0, as
    JSON writers emit sizes); ``None`` for anything else (bools, NaN, 64.5, strings, lists)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def brief(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting user input in a message."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more than 4,300 digits
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        message = _readable(exc)
        cut = message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"
        raise error(f"{origin}: {cut}") from None
    except RecursionError:
        raise error(f"{origin}: nested too deeply") from None


def to_builtins(spec: msgspec.Struct) -> dict[str, Any]:
    """Plain data of a spec (enums as their values), in field order."""
    out = msgspec.to_builtins(spec)
    assert isinstance(out, dict)
    return out
