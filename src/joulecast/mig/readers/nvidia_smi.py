"""nvidia-smi ``--query-gpu`` CSV: board power only (utilisation is N/A under MIG)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from joulecast.errors import TelemetryError
from joulecast.mig.frame import Telemetry, build_telemetry
from joulecast.mig.readers.text import csv_problem, to_float

_POWER_COLUMNS = ("power.draw", "power.draw.average", "power.draw.instant")


def _timestamp(stamp: str, line: int) -> float:
    """A numeric or ``YYYY/MM/DD HH:MM:SS.fff`` timestamp in seconds."""
    try:
        return float(stamp)
    except ValueError:
        try:
            return datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp()
        except ValueError:
            raise TelemetryError(f"nvidia-smi: line {line}: bad timestamp {stamp[:40]!r}") from None


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
        TelemetryError: On a missing power or timestamp column, no layout, a short row, or a
            value that is not a number or outside :mod:`joulecast.mig.limits` (naming the line).
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in next(reader)]
    except StopIteration:
        raise TelemetryError("nvidia-smi: empty file") from None
    except csv.Error as exc:
        raise TelemetryError(f"nvidia-smi: line 1: {csv_problem(exc)}") from None
    power_col = next((c for c in _POWER_COLUMNS if c in header), None)
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
    need = max(ti, pi, -1 if ui is None else ui) + 1
    t_list: list[float] = []
    p_list: list[str] = []
    u_list: list[str] = []
    lines: list[int] = []
    try:
        for r in reader:
            if not any(c.strip() for c in r):
                continue
            if len(r) < need:
                raise TelemetryError(
                    f"nvidia-smi: line {reader.line_num} has {len(r)} fields, expected {need}"
                )
            t_list.append(_timestamp(r[ti].strip(), reader.line_num))
            p_list.append(r[pi].replace("W", ""))
            u_list.append(r[ui].strip() if ui is not None else "GPU-0")
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise TelemetryError(f"nvidia-smi: line {reader.line_num}: {csv_problem(exc)}") from None
    power = to_float(p_list, lambda k: f"nvidia-smi: line {lines[k]}")
    n_i = len(profiles)
    ids = list(profiles)
    rep = np.repeat
    return build_telemetry(
        time_s=rep(np.array(t_list, dtype=np.float64), n_i),
        gpu_uuid=[u for u in u_list for _ in range(n_i)],
        gpu_instance_id=ids * len(t_list),
        profile=[profiles[i] for i in ids] * len(t_list),
        board_power_w=rep(power, n_i),
        activity={"gract": np.ones(len(t_list) * n_i)},
        source_format="nvidia-smi",
        row_numbers=rep(np.array(lines, dtype=np.intp), n_i),
        warnings=[
            "nvidia-smi: no per-instance activity under MIG; only the slice split is meaningful"
        ],
    )
