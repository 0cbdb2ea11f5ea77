"""Telemetry readers: long CSV, dcgm-exporter Prometheus text, ``dcgmi dmon``, nvidia-smi CSV.

Every reader ends in :func:`joulecast.mig.frame.build_telemetry`, so the quirk handling (board power
repeated per instance row, ratios slightly above 1, blanks, odd profile names) is shared.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from joulecast.errors import TelemetryError
from joulecast.mig.frame import (
    ACTIVITY_FIELDS,
    Telemetry,
    build_telemetry,
    build_telemetry_coded,
    first_seen_codes,
)

InputFormat = Literal["auto", "long-csv", "prometheus", "dmon", "nvidia-smi"]

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

#: dcgm-exporter metric name -> activity field (or board power / energy).
DCGM_METRICS: dict[str, str] = {
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gract",
    "DCGM_FI_PROF_SM_ACTIVE": "smact",
    "DCGM_FI_PROF_SM_OCCUPANCY": "smocc",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "tensor_active",
    "DCGM_FI_PROF_DRAM_ACTIVE": "dram_active",
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE": "fp64_active",
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE": "fp32_active",
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE": "fp16_active",
    "DCGM_FI_DEV_POWER_USAGE": "board_power_w",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "energy_mj",
}
_DMON_TAGS: dict[str, str] = {
    "GRACT": "gract",
    "SMACT": "smact",
    "SMOCC": "smocc",
    "TENSO": "tensor_active",
    "DRAMA": "dram_active",
    "FP64A": "fp64_active",
    "FP32A": "fp32_active",
    "FP16A": "fp16_active",
    "POWER": "board_power_w",
}
_MISSING = {"", "n/a", "[n/a]", "na", "nan", "<<<null>>>", "-"}


def _cell_value(text: str) -> float:
    """One text cell as a float; blanks and N/A markers are NaN.

    Raises:
        ValueError: If the cell is neither a finite number nor a missing marker.
    """
    v = text.strip()
    if v.lower() in _MISSING:
        return float("nan")
    out = float(v)
    if not math.isfinite(out):
        raise ValueError(f"not a finite number: {v!r}")
    return out


def _to_float(values: list[str]) -> NDArray[np.float64]:
    """Convert text cells to floats; blanks and N/A become NaN, other non-numbers are errors."""
    out = np.empty(len(values))
    for k, v in enumerate(values):
        try:
            out[k] = _cell_value(v)
        except ValueError:
            raise TelemetryError(f"not a number: '{v.strip()}'") from None
    return out


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
    spaces, ``N/A``) goes through :func:`_cell_value` cell by cell.

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
            out[k] = _cell_value(text)
        except ValueError:
            raise TelemetryError(
                f"long-csv: line {int(f.lines[k])}, column {name}: not a number: '{text.strip()}'"
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
        TelemetryError: On missing columns, bad numbers or inconsistent rows.
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    data = data.removeprefix(b"\xef\xbb\xbf")
    head_b, _, body = data.partition(b"\n")
    head = head_b.decode("utf-8", errors="replace")
    header = [h.strip() for h in next(csv.reader([head]), [])] if head.strip() else []
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
    next(reader)
    rows: list[list[str]] = []
    lines: list[int] = []
    width = len(header)
    for r in reader:
        line = reader.line_num
        if not r or not any(c.strip() for c in r):
            continue
        if len(r) != width:
            raise TelemetryError(f"long-csv: line {line} has {len(r)} fields, header has {width}")
        rows.append(r)
        lines.append(line)
    if not rows:
        raise TelemetryError("long-csv: header but no rows")
    cols = list(zip(*rows, strict=True))
    col = {name: list(cols[i]) for i, name in enumerate(header)}
    try:
        time_s = _to_float(col["timestamp_s"])
        power = _to_float(col["board_power_w"])
        activity = {f: _to_float(col[f]) for f in present_fields}
    except TelemetryError as exc:
        raise TelemetryError(f"long-csv: {exc}") from None
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


_SAMPLE_RE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+(?P<ts>-?\d+))?\s*$"
)
_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_prometheus_samples(
    text: str,
) -> list[tuple[str, dict[str, str], float, float | None]]:
    """Parse Prometheus text exposition into (name, labels, value, timestamp_s or None).

    Args:
        text: Exposition text (``# HELP``/``# TYPE`` lines are skipped).

    Returns:
        The samples in file order.

    Raises:
        TelemetryError: On a line that is not a sample.
    """
    out: list[tuple[str, dict[str, str], float, float | None]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if m is None:
            raise TelemetryError(f"prometheus: line {lineno} is not a metric sample: {line[:60]!r}")
        labels = dict(_LABEL_RE.findall(m.group("labels") or ""))
        try:
            value = float(m.group("value"))
        except ValueError:
            raise TelemetryError(
                f"prometheus: line {lineno}: bad value {m.group('value')!r}"
            ) from None
        ts = m.group("ts")
        out.append((m.group("name"), labels, value, None if ts is None else int(ts) / 1000.0))
    return out


def _label(labels: Mapping[str, str], *names: str) -> str | None:
    for n in names:
        if n in labels and labels[n] != "":
            return labels[n]
    return None


def read_prometheus(
    text: str, *, interval_s: float = 30.0, scrape_time_s: float | None = None
) -> Telemetry:
    """Read dcgm-exporter metrics: one or more concatenated scrapes, or a ``query_range`` JSON.

    Scrapes without sample timestamps are told apart by a series repeating; the k-th scrape is
    stamped ``scrape_time_s + k * interval_s``.

    Args:
        text: Exposition text or Prometheus HTTP API JSON (``resultType: matrix``).
        interval_s: Scrape interval used when samples carry no timestamp.
        scrape_time_s: Time of the first scrape when samples carry no timestamp.

    Returns:
        Parsed telemetry.

    Raises:
        TelemetryError: When there is no MIG instance data or no board power.
    """
    if text.lstrip().startswith("{"):
        samples = _query_range_samples(text)
    else:
        samples = parse_prometheus_samples(text)
    base = 0.0 if scrape_time_s is None else scrape_time_s
    # (time, uuid) -> board values; (time, uuid, gi, profile) -> fields
    board: dict[tuple[float, str], dict[str, float]] = {}
    inst: dict[tuple[float, str, str, str], dict[str, float]] = {}
    seen: set[tuple[str, str, str]] = set()
    scrape = 0
    for name, labels, value, ts in samples:
        field = DCGM_METRICS.get(name)
        if field is None:
            continue
        uuid = _label(labels, "UUID", "uuid") or f"gpu{_label(labels, 'gpu') or '0'}"
        gi = _label(labels, "GPU_I_ID")
        if ts is None:
            key = (name, uuid, gi or "")
            if key in seen:
                scrape += 1
                seen = set()
            seen.add(key)
            t = base + scrape * interval_s
        else:
            t = ts
        if field in ("board_power_w", "energy_mj"):
            board.setdefault((t, uuid), {})[field] = value
        elif gi is not None:
            prof = _label(labels, "GPU_I_PROFILE") or ""
            inst.setdefault((t, uuid, gi, prof), {})[field] = value
    if not inst:
        raise TelemetryError(
            "prometheus: no per-instance metrics (GPU_I_ID label); is MIG enabled and are "
            "DCGM_FI_PROF_* fields exported?"
        )
    if not any("board_power_w" in v for v in board.values()):
        raise TelemetryError("prometheus: no DCGM_FI_DEV_POWER_USAGE samples (board power)")
    keys = sorted(inst, key=lambda k: (k[1], k[0]))
    time_s = np.array([k[0] for k in keys], dtype=np.float64)
    power = np.array([board.get((k[0], k[1]), {}).get("board_power_w", np.nan) for k in keys])
    energy = np.array([board.get((k[0], k[1]), {}).get("energy_mj", np.nan) for k in keys]) / 1000.0
    activity = {
        f: np.array([inst[k].get(f, np.nan) for k in keys], dtype=np.float64)
        for f in ACTIVITY_FIELDS
        if any(f in v for v in inst.values())
    }
    return build_telemetry(
        time_s=time_s,
        gpu_uuid=[k[1] for k in keys],
        gpu_instance_id=[k[2] for k in keys],
        profile=[k[3] for k in keys],
        board_power_w=power,
        activity=activity,
        energy_counter_j=None if np.isnan(energy).all() else energy,
        source_format="prometheus",
        row_offset=0,
    )


def _query_range_samples(text: str) -> list[tuple[str, dict[str, str], float, float | None]]:
    try:
        doc = json.loads(text)
        result = doc["data"]["result"]
    except (ValueError, KeyError, TypeError):
        raise TelemetryError(
            "prometheus: JSON is not a query_range response (data.result)"
        ) from None
    out: list[tuple[str, dict[str, str], float, float | None]] = []
    for series in result:
        labels = {str(k): str(v) for k, v in series.get("metric", {}).items()}
        name = labels.pop("__name__", "")
        for ts, value in series.get("values", []):
            out.append((name, labels, float(value), float(ts)))
    return out


def read_dmon(
    text: str, *, profiles: Mapping[str, str], interval_s: float = 1.0, gpu_uuid: str = "GPU-0"
) -> Telemetry:
    """Read ``dcgmi dmon`` output (``GPU`` and ``GPU-I`` rows; no timestamps, one block per period).

    Args:
        text: dmon output.
        profiles: Profile name per GPU-instance entity id (dmon does not print profiles).
        interval_s: The ``-d`` period in seconds.
        gpu_uuid: Name to give the GPU in the output.

    Returns:
        Parsed telemetry.

    Raises:
        TelemetryError: If no header, no POWER column, or an instance has no profile.
    """
    tags: list[str] | None = None
    board: dict[int, float] = {}
    rows: list[tuple[int, str, dict[str, float]]] = []
    seen: set[str] = set()
    block = 0
    for raw in text.splitlines():
        parts = raw.split()
        if not parts:
            continue
        if parts[0] == "#Entity":
            tags = parts[2:] if len(parts) > 1 and parts[1] == "ID" else parts[1:]
            continue
        if parts[0] == "ID" or parts[0].startswith("#"):
            continue
        if tags is None:
            raise TelemetryError("dmon: no '#Entity' header line")
        if parts[0] in ("GPU", "GPU-I") and len(parts) >= 2:
            ent = f"{parts[0]} {parts[1]}"
            if ent in seen:
                block += 1
                seen = set()
            seen.add(ent)
            vals = parts[2:]
            if len(vals) != len(tags):
                raise TelemetryError(
                    f"dmon: row {raw.strip()!r} has {len(vals)} values for {len(tags)} columns"
                )
            rec = {
                _DMON_TAGS[t]: float(_to_float([v])[0])
                for t, v in zip(tags, vals, strict=True)
                if t in _DMON_TAGS
            }
            if parts[0] == "GPU":
                if "board_power_w" in rec:
                    board[block] = rec["board_power_w"]
            else:
                rows.append((block, parts[1], rec))
    if tags is None or "POWER" not in tags:
        raise TelemetryError("dmon: no POWER column; run dmon with field 155 (-e ...,155)")
    if not rows:
        raise TelemetryError("dmon: no GPU-I rows; run dmon on the GPU instances (-i ...)")
    missing = sorted({r[1] for r in rows} - set(profiles))
    if missing:
        raise TelemetryError(
            f"dmon: no profile for GPU instance(s) {', '.join(missing)}; "
            "pass --mig-profiles ID=PROFILE,..."
        )
    fields = sorted({f for r in rows for f in r[2]} & set(ACTIVITY_FIELDS))
    return build_telemetry(
        time_s=np.array([r[0] * interval_s for r in rows], dtype=np.float64),
        gpu_uuid=[gpu_uuid] * len(rows),
        gpu_instance_id=[r[1] for r in rows],
        profile=[profiles[r[1]] for r in rows],
        board_power_w=np.array([board.get(r[0], np.nan) for r in rows]),
        activity={f: np.array([r[2].get(f, np.nan) for r in rows]) for f in fields},
        source_format="dmon",
    )


def read_nvidia_smi(text: str, *, profiles: Mapping[str, str]) -> Telemetry:
    """Read nvidia-smi ``--query-gpu`` CSV (board power only) plus a MIG layout.

    Utilisation is not reported under MIG, so only the slice split can use this input; every
    instance gets a constant activity of 1 and a warning says so.

    Args:
        text: CSV with ``timestamp`` and ``power.draw`` columns (``uuid`` optional).
        profiles: Profile per GPU-instance id (from ``nvidia-smi mig -lgi``).

    Returns:
        Parsed telemetry.

    Raises:
        TelemetryError: On a missing power or timestamp column or no layout.
    """
    from datetime import datetime

    reader = csv.reader(io.StringIO(text))
    try:
        header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in next(reader)]
    except StopIteration:
        raise TelemetryError("nvidia-smi: empty file") from None
    power_col = next(
        (c for c in ("power.draw", "power.draw.average", "power.draw.instant") if c in header), None
    )
    missing = [
        n for n, c in (("timestamp", "timestamp" in header), ("power.draw", power_col)) if not c
    ]
    if missing:
        raise TelemetryError(f"nvidia-smi: missing required column(s): {', '.join(missing)}")
    if not profiles:
        raise TelemetryError(
            "nvidia-smi: CSV has no MIG layout; pass --mig-profiles ID=PROFILE,..."
        )
    assert power_col is not None
    ti, pi = header.index("timestamp"), header.index(power_col)
    ui = header.index("uuid") if "uuid" in header else None
    t_list: list[float] = []
    p_list: list[str] = []
    u_list: list[str] = []
    for r in reader:
        if not r:
            continue
        stamp = r[ti].strip()
        try:
            t_list.append(float(stamp))
        except ValueError:
            try:
                t_list.append(datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp())
            except ValueError:
                raise TelemetryError(f"nvidia-smi: bad timestamp {stamp!r}") from None
        p_list.append(r[pi].replace("W", ""))
        u_list.append(r[ui].strip() if ui is not None else "GPU-0")
    power = _to_float(p_list)
    n_i = len(profiles)
    ids = list(profiles)
    rep = np.repeat
    return build_telemetry(
        time_s=rep(np.array(t_list), n_i),
        gpu_uuid=[u for u in u_list for _ in range(n_i)],
        gpu_instance_id=ids * len(t_list),
        profile=[profiles[i] for i in ids] * len(t_list),
        board_power_w=rep(power, n_i),
        activity={"gract": np.ones(len(t_list) * n_i)},
        source_format="nvidia-smi",
        warnings=[
            "nvidia-smi: no per-instance activity under MIG; only the slice split is meaningful"
        ],
    )


def detect_format(text: str) -> InputFormat:
    """Guess the format of telemetry text.

    Raises:
        TelemetryError: If nothing matches.
    """
    head = text.lstrip("\ufeff \t\r\n")[:4000]
    first = head.splitlines()[0] if head else ""
    if first.startswith("timestamp_s") or "board_power_w" in first:
        return "long-csv"
    if "DCGM_FI_" in head or head.startswith("{"):
        return "prometheus"
    if "#Entity" in head:
        return "dmon"
    if first.startswith("timestamp") and "power.draw" in first:
        return "nvidia-smi"
    if "EntityId" in first and "GRACT" in first:
        raise TelemetryError(
            "MIGProfiler CSV has activity but no power column; nothing to attribute"
        )
    if "," in first:
        return "long-csv"
    raise TelemetryError("cannot tell the telemetry format; pass --input-format")


def parse_profiles_option(spec: str | None) -> dict[str, str]:
    """Parse ``1=3g.40gb,2=4g.40gb`` into a mapping of GPU-instance id to profile."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        if "=" not in part:
            raise TelemetryError(f"--mig-profiles: expected ID=PROFILE, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def read_telemetry(
    path: Path,
    input_format: InputFormat = "auto",
    *,
    profiles: Mapping[str, str] | None = None,
    interval_s: float | None = None,
) -> Telemetry:
    """Read a telemetry file in any supported format.

    Args:
        path: File to read.
        input_format: Format, or ``auto`` to detect it.
        profiles: MIG layout for formats that lack it (dmon, nvidia-smi).
        interval_s: Sample period for formats without timestamps.

    Returns:
        Parsed telemetry.
    """
    data = path.read_bytes()
    fmt = (
        detect_format(data[:8192].decode("utf-8", errors="replace"))
        if input_format == "auto"
        else input_format
    )
    if fmt == "long-csv":
        return read_long_csv(data)
    text = data.decode("utf-8", errors="replace")
    if fmt == "prometheus":
        return read_prometheus(text, interval_s=interval_s or 30.0)
    if fmt == "dmon":
        return read_dmon(text, profiles=profiles or {}, interval_s=interval_s or 1.0)
    return read_nvidia_smi(text, profiles=profiles or {})
