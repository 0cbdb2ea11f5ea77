"""joulecast's long CSV: one row per (timestamp, GPU instance), vectorised numpy parsing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from joulecast.errors import TelemetryError
from joulecast.mig.frame import (
    ACTIVITY_FIELDS,
    Telemetry,
    build_telemetry_coded,
    first_seen_codes,
)
from joulecast.mig.readers.text import cell_value, csv_problem, decode_utf8, to_float

#: Exact header of joulecast's long CSV.
LONG_CSV_HEADER: tuple[str, ...] = (
    "timestamp_s",
    "gpu_uuid",
    "gpu_instance_id",
    "profile",
    "board_power_w",
    *ACTIVITY_FIELDS,
)
_LONG_REQUIRED = ("timestamp_s", "gpu_uuid", "gpu_instance_id", "profile", "board_power_w")

_POW10 = 10.0 ** np.arange(32)


class _NeedsCsvModule(Exception):
    """The fast long-CSV path cannot read this text (quoted fields, lone CR)."""


@dataclass(frozen=True, eq=False)
class _Fields:
    """Byte offsets of every field of a comma-separated body.

    Attributes:
        data: The body as bytes (ending in a newline).
        starts: (R, C) offset of each field's first byte.
        ends: (R, C) offset one past each field's last byte.
        lines: (R,) 1-based file line number of each row.
    """

    data: NDArray[np.uint8]
    starts: NDArray[np.intp]
    ends: NDArray[np.intp]
    lines: NDArray[np.intp]


def _split_fields(body: bytes, n_cols: int, first_line: int) -> _Fields:
    """Locate the fields of every non-blank line; every line must have ``n_cols`` fields.

    Raises:
        TelemetryError: If a line has another number of fields.
        _NeedsCsvModule: On quotes or bare carriage returns.
    """
    if b'"' in body:
        raise _NeedsCsvModule
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            raise _NeedsCsvModule
    if not body.endswith(b"\n"):
        body += b"\n"
    b = np.frombuffer(body, dtype=np.uint8)
    nl = np.flatnonzero(b == 10)
    line_start = np.concatenate([[0], nl[:-1] + 1])
    comma = np.flatnonzero(b == 44)
    per_line = np.diff(np.searchsorted(comma, nl), prepend=0)
    # Lines without a comma are blank when they hold nothing but spaces and tabs.
    nonblank = np.ones(nl.size, dtype=bool)
    for k in np.flatnonzero(per_line == 0).tolist():
        nonblank[k] = bool(body[line_start[k] : nl[k]].strip())
    wrong = np.flatnonzero(nonblank & (per_line != n_cols - 1))
    if wrong.size:
        k = int(wrong[0])
        raise TelemetryError(
            f"long-csv: line {first_line + k} has {int(per_line[k]) + 1} fields, "
            f"header has {n_cols}"
        )
    rows = np.flatnonzero(nonblank)
    cm = comma.reshape(rows.size, n_cols - 1)
    starts = np.column_stack([line_start[rows], cm + 1])
    ends = np.column_stack([cm, nl[rows]])
    return _Fields(data=b, starts=starts, ends=ends, lines=rows + first_line)


def _gather(b: NDArray[np.uint8], start: NDArray[np.intp], width: int) -> NDArray[np.uint8]:
    """(n, width) bytes from each start offset (``b`` is zero-padded; callers mask past ends)."""
    if b.size < width:
        b = np.concatenate([b, np.zeros(width - b.size, dtype=np.uint8)])
    windows = np.lib.stride_tricks.sliding_window_view(b, width)
    return np.asarray(windows[np.minimum(start, windows.shape[0] - 1)])


def _parse_numbers(f: _Fields, col: int, name: str) -> NDArray[np.float64]:
    """Parse one numeric column; blank cells are NaN.

    Plain decimals (``-12.345``, at most 15 digits) are parsed with vectorised arithmetic, one
    character position at a time: the digits form an exact integer, and one correctly rounded
    division by a power of ten gives the same double as ``float()``. Anything else (exponents,
    spaces, ``N/A``) goes through :func:`~joulecast.mig.readers.text.cell_value` cell by cell.

    Raises:
        TelemetryError: On a cell that is not a number, naming its line and column.
    """
    b = f.data
    start, end = f.starts[:, col], f.ends[:, col]
    n = start.size
    length = end - start
    width = min(int(length.max()) if n else 0, 24)
    if width == 0:
        return np.full(n, np.nan)
    chars = _gather(b, start, width).T.copy()
    mant = np.zeros(n)
    after = np.zeros(n, dtype=np.int8)
    digits = np.zeros(n, dtype=np.int8)
    dots = np.zeros(n, dtype=np.int8)
    odd = length > width
    lead_minus = chars[0] == 45
    for j in range(width):
        c = chars[j]
        inside = length > j
        d = c - np.uint8(48)
        is_digit = (d <= 9) & inside
        is_dot = (c == 46) & inside
        mant = np.where(is_digit, mant * 10.0 + d, mant)
        after += is_digit & (dots > 0)
        digits += is_digit
        dots += is_dot
        other = inside & ~is_digit & ~is_dot
        if j == 0:
            other &= ~lead_minus
        odd |= other
    simple = ~odd & (dots <= 1) & (digits >= 1) & (digits <= 15)
    out = mant / _POW10[after]
    out[lead_minus] *= -1.0
    out[length == 0] = np.nan
    for k in np.flatnonzero(~simple & (length > 0)).tolist():
        text = bytes(b[start[k] : end[k]]).decode("utf-8", errors="replace")
        try:
            out[k] = cell_value(text)
        except ValueError:
            raise TelemetryError(
                f"long-csv: line {int(f.lines[k])}, column {name}: "
                f"not a number: {text.strip()[:40]!r}"
            ) from None
    return np.asarray(out, dtype=np.float64)


def _code_strings(f: _Fields, col: int) -> tuple[NDArray[np.intp], list[str]]:
    """Integer code per cell of a text column (first-seen order) and the stripped values."""
    b = f.data
    start, end = f.starts[:, col], f.ends[:, col]
    length = end - start
    width = int(length.max()) if start.size else 0
    words = -(-max(width, 1) // 8)
    mat = np.zeros((start.size, words * 8), dtype=np.uint8)
    if width:
        mat[:, :width] = _gather(b, start, width)
        mat[np.arange(words * 8) >= length[:, None]] = 0
    packed = mat.view(np.uint64)
    # Hash each cell to one integer, then check the hash against the bytes: exact either way.
    h = length.astype(np.uint64)
    for k in range(words):
        h = (h ^ packed[:, k]) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    if not np.array_equal(packed, packed[first[inverse]]):
        _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    # Number codes by first appearance; merge values that only differ in surrounding spaces.
    names: list[str] = []
    index: dict[str, int] = {}
    remap = np.empty(first.size, dtype=np.intp)
    for u in np.argsort(first, kind="stable").tolist():
        k = int(first[u])
        text = bytes(b[start[k] : end[k]]).decode("utf-8", errors="replace").strip()
        remap[u] = index.setdefault(text, len(index))
        if remap[u] == len(names):
            names.append(text)
    return remap[inverse], names


def read_long_csv(text: str | bytes) -> Telemetry:
    """Read joulecast's long CSV (one row per timestamp and instance).

    The common case (unquoted fields, plain decimals) is parsed with vectorised numpy code; a
    file with quoted fields falls back to the ``csv`` module. Both give the same result.

    Args:
        text: File contents (text, or UTF-8 bytes straight from the file).

    Returns:
        Parsed telemetry.

    Raises:
        TelemetryError: On bytes that are not UTF-8, missing columns, bad numbers, values out of
            bounds (:mod:`joulecast.mig.limits`) or inconsistent rows.
    """
    if isinstance(text, str):
        return read_long_csv_checked(text.encode("utf-8"))
    decode_utf8(text, "long-csv")
    return read_long_csv_checked(text)


def read_long_csv_checked(data: bytes) -> Telemetry:
    """:func:`read_long_csv` of bytes the caller has already checked to be UTF-8."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    head_b, _, body = data.partition(b"\n")
    head = head_b.decode("utf-8", errors="replace")
    try:
        header = [h.strip() for h in next(csv.reader([head]), [])] if head.strip() else []
    except csv.Error as exc:
        raise TelemetryError(f"long-csv: line 1: {csv_problem(exc)}") from None
    if not header:
        raise TelemetryError("long-csv: empty file")
    missing = [c for c in _LONG_REQUIRED if c not in header]
    if missing:
        raise TelemetryError(f"long-csv: missing required column(s): {', '.join(missing)}")
    present_fields = [f for f in ACTIVITY_FIELDS if f in header]
    if not present_fields:
        raise TelemetryError(
            f"long-csv: no activity column; expected some of: {', '.join(ACTIVITY_FIELDS)}"
        )
    notes = []
    absent = [f for f in ACTIVITY_FIELDS if f not in header]
    if absent:
        notes.append(f"long-csv: columns not present, treated as not measured: {', '.join(absent)}")
    try:
        fields = _split_fields(body, len(header), first_line=2)
    except _NeedsCsvModule:
        return _read_long_csv_module(
            data.decode("utf-8", errors="replace"), header, present_fields, notes
        )
    if fields.lines.size == 0:
        raise TelemetryError("long-csv: header but no rows")
    col = {name: i for i, name in enumerate(header)}
    numbers = {
        name: _parse_numbers(fields, col[name], name)
        for name in ("timestamp_s", "board_power_w", *present_fields)
    }
    gpu_code, gpu_names = _code_strings(fields, col["gpu_uuid"])
    gi_code, gi_names = _code_strings(fields, col["gpu_instance_id"])
    prof_code, prof_names = _code_strings(fields, col["profile"])
    # One code per (GPU instance id, profile) pair, numbered in order of first appearance.
    pair = gi_code * len(prof_names) + prof_code
    _, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, dtype=np.intp)
    rank[order] = np.arange(order.size)
    inst_keys = [
        (gi_names[int(pair[first[u]]) // len(prof_names)], prof_names[int(prof_code[first[u]])])
        for u in order.tolist()
    ]
    return build_telemetry_coded(
        time_s=numbers["timestamp_s"],
        gpu_code=gpu_code,
        gpu_names=gpu_names,
        inst_code=rank[inverse.reshape(-1)],
        inst_keys=inst_keys,
        board_power_w=numbers["board_power_w"],
        activity={f: numbers[f] for f in present_fields},
        source_format="long-csv",
        row_numbers=fields.lines,
        warnings=notes,
    )


def _read_long_csv_module(
    text: str, header: list[str], present_fields: list[str], notes: list[str]
) -> Telemetry:
    """Long-CSV reader on the ``csv`` module (quoted fields); same checks as the fast path."""
    reader = csv.reader(io.StringIO(text))
    rows: list[list[str]] = []
    lines: list[int] = []
    width = len(header)
    try:
        next(reader)
        for r in reader:
            line = reader.line_num
            if not r or not any(c.strip() for c in r):
                continue
            if len(r) != width:
                raise TelemetryError(
                    f"long-csv: line {line} has {len(r)} fields, header has {width}"
                )
            rows.append(r)
            lines.append(line)
    except csv.Error as exc:
        raise TelemetryError(f"long-csv: line {reader.line_num}: {csv_problem(exc)}") from None
    if not rows:
        raise TelemetryError("long-csv: header but no rows")
    cols = list(zip(*rows, strict=True))
    col = {name: list(cols[i]) for i, name in enumerate(header)}

    def numbers(name: str) -> NDArray[np.float64]:
        return to_float(col[name], lambda k: f"long-csv: line {lines[k]}, column {name}")

    time_s = numbers("timestamp_s")
    power = numbers("board_power_w")
    activity = {f: numbers(f) for f in present_fields}
    gpu_code, gpu_names = first_seen_codes([g.strip() for g in col["gpu_uuid"]])
    keys = [
        f"{g.strip()}\x00{p.strip()}"
        for g, p in zip(col["gpu_instance_id"], col["profile"], strict=True)
    ]
    inst_code, key_names = first_seen_codes(keys)
    return build_telemetry_coded(
        time_s=time_s,
        gpu_code=gpu_code,
        gpu_names=gpu_names,
        inst_code=inst_code,
        inst_keys=[(k.split("\x00")[0], k.split("\x00")[1]) for k in key_names],
        board_power_w=power,
        activity=activity,
        source_format="long-csv",
        row_numbers=np.array(lines, dtype=np.intp),
        warnings=notes,
    )
