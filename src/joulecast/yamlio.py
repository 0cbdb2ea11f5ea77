"""The one YAML (and JSON) reader and writer of joulecast.

Shipped data files and user files go through here: libyaml's C parser where PyYAML was built with
it (about ten times faster than the pure-Python one), safe loading only, and every failure a
one-line :class:`~joulecast.errors.JoulecastError` naming the file (unreadable, not UTF-8, not
YAML, not a mapping).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml

from joulecast.errors import JoulecastError, SpecError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_yaml_text(text: str) -> Any:
    """Parse YAML text (safe subset).

    Raises:
        ValueError: the text is not valid YAML (the message is the parser's first line).
    """
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


def read_text(path: str | Path, what: str, error: type[JoulecastError] = SpecError) -> str:
    """Read a UTF-8 text file, or raise ``error`` with one line naming it.

    Args:
        path: the file.
        what: what the file is, for the message ("GPU spec", "model config", ...).
        error: the :class:`JoulecastError` subclass to raise.
    """
    p = Path(path)
    try:
        if p.is_file():
            return p.read_text(encoding="utf-8")
        exists, folder = p.exists(), p.is_dir()
    except UnicodeDecodeError as exc:
        raise error(f"{what} {p.name}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, ValueError) as exc:  # permissions, a name too long, a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{what} {p.name}: cannot read ({reason})") from None
    if not exists:
        raise error(f"{what} not found: {p}")
    if folder:
        raise error(f"{what} {p} is a folder, not a file")
    raise error(f"{what} {p} is not a regular file")  # a FIFO or a device could block forever


def load_file(
    path: str | Path,
    what: str,
    error: type[JoulecastError] = SpecError,
    *,
    kind: Literal["json", "yaml"] | None = None,
) -> Any:
    """Read and parse a JSON or YAML file (``kind`` from the suffix unless given).

    Raises:
        JoulecastError: ``error`` with one line naming the file: missing, a folder, unreadable,
            not UTF-8, malformed (JSON: line and column), or nested too deeply.
    """
    p = Path(path)
    text = read_text(p, what, error)
    kind = kind or ("json" if p.suffix.lower() == ".json" else "yaml")
    try:
        return json.loads(text) if kind == "json" else load_yaml_text(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} {p.name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:  # YAML errors, JSON integers of thousands of digits
        raise error(
            f"{what} {p.name}: not valid {kind.upper()} ({str(exc).splitlines()[0]})"
        ) from None
    except RecursionError:
        raise error(f"{what} {p.name}: nested too deeply") from None


def load_mapping(
    path: str | Path, what: str, error: type[JoulecastError] = SpecError
) -> dict[str, Any]:
    """Read a YAML or JSON file that must hold a mapping.

    Raises:
        JoulecastError: ``error`` with one line: missing, unreadable, not UTF-8, malformed, or
            not a mapping.
    """
    p = Path(path)
    data = load_file(p, what, error)
    if not isinstance(data, dict):
        raise error(f"{what} {p.name}: expected a mapping of fields")
    return data


def dump_yaml(data: Any, *, flow: bool = False) -> str:
    """YAML text of plain data, keys in insertion order.

    Args:
        data: plain data (dicts, lists, numbers, strings).
        flow: write innermost lists in flow style (``[1, 2, 3]``) rather than one item a line.
    """
    style = None if flow else False
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=style))
