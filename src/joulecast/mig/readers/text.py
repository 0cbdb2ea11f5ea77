"""Shared by the readers: text cells to numbers, and reading a telemetry file safely."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from joulecast.errors import TelemetryError
from joulecast.mig.limits import MAX_TELEMETRY_BYTES

MISSING_MARKERS = frozenset({"", "n/a", "[n/a]", "na", "nan", "<<<null>>>", "-"})


def cell_value(text: str) -> float:
    """One text cell as a float; blanks and N/A markers are NaN.

    Raises:
        ValueError: If the cell is neither a finite number nor a missing marker.
    """
    v = text.strip()
    if v.lower() in MISSING_MARKERS:
        return float("nan")
    out = float(v)
    if not math.isfinite(out):
        raise ValueError(f"not a finite number: {v!r}")
    return out


def to_float(values: list[str], where: Callable[[int], str] | None = None) -> NDArray[np.float64]:
    """Convert text cells to floats; blanks and N/A become NaN, other non-numbers are errors.

    Args:
        values: The cells.
        where: Names the place of the k-th cell (``"dmon: line 4"``) for the message.

    Raises:
        TelemetryError: On a cell that is not a number (or not finite).
    """
    out = np.empty(len(values))
    for k, v in enumerate(values):
        try:
            out[k] = cell_value(v)
        except ValueError:
            at = f"{where(k)}: " if where is not None else ""
            raise TelemetryError(f"{at}not a number: {v.strip()[:40]!r}") from None
    return out


def csv_problem(exc: csv.Error) -> str:
    """One-line text of a ``csv`` module error."""
    if "new-line" in str(exc):
        return "carriage return (CR) inside a row; line ends must be LF or CRLF"
    return str(exc).split(" - ")[0]


def decode_utf8(data: bytes, what: str) -> str:
    """Decode UTF-8 (a leading BOM is dropped), or one line saying where it is not UTF-8.

    Raises:
        TelemetryError: On bytes that are not UTF-8 (UTF-16 files are named as such).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TelemetryError(f"{what}: UTF-16 text; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TelemetryError(f"{what}: not UTF-8 text (line {line}, byte {exc.start})") from None


def read_telemetry_bytes(path: Path) -> bytes:
    """The bytes of a telemetry file, or one line saying why it cannot be read.

    Raises:
        TelemetryError: On a missing file, a folder, an unreadable or oversized file.
    """
    if path.is_dir():
        raise TelemetryError(f"telemetry {path} is a folder, not a file")
    if not path.is_file():
        raise TelemetryError(f"telemetry file not found: {path}")
    try:
        size = path.stat().st_size
        if size > MAX_TELEMETRY_BYTES:
            raise TelemetryError(
                f"telemetry {path.name}: {size / 2**30:.1f} GiB is larger than the "
                f"{MAX_TELEMETRY_BYTES / 2**30:g} GiB limit; split the file by time"
            )
        return path.read_bytes()
    except OSError as exc:
        raise TelemetryError(f"telemetry {path.name}: cannot read ({exc.strerror})") from None
