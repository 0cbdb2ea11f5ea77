"""``dcgmi dmon`` output: ``GPU`` and ``GPU-I`` rows, no timestamps, one block per period."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from joulecast.errors import TelemetryError
from joulecast.mig.frame import ACTIVITY_FIELDS, Telemetry, build_telemetry
from joulecast.mig.limits import check_column
from joulecast.mig.readers.text import to_float

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


def _line_label(lineno: int) -> Callable[[int], str]:
    """Names every cell of one dmon line by that line."""
    return lambda _k: f"dmon: line {lineno}"


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
        TelemetryError: If no header, no POWER column, an instance has no profile, or a value is
            not a number or outside :mod:`joulecast.mig.limits` (naming the line).
    """
    tags: list[str] | None = None
    board: dict[int, tuple[float, int]] = {}
    rows: list[tuple[int, str, dict[str, float], int]] = []
    seen: set[str] = set()
    block = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
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
                    f"dmon: line {lineno} has {len(vals)} values for {len(tags)} columns"
                )
            used = [(_DMON_TAGS[t], v) for t, v in zip(tags, vals, strict=True) if t in _DMON_TAGS]
            numbers = to_float([v for _, v in used], _line_label(lineno))
            rec = {name: float(x) for (name, _), x in zip(used, numbers, strict=True)}
            if parts[0] == "GPU":
                if "board_power_w" in rec:
                    board[block] = (rec["board_power_w"], lineno)
            else:
                rows.append((block, parts[1], rec, lineno))
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
    gpu_rows = list(board.values())
    check_column(
        "board_power_w",
        np.array([p for p, _ in gpu_rows], dtype=np.float64),
        lambda k: f"dmon: line {gpu_rows[k][1]}",
    )
    fields = sorted({f for r in rows for f in r[2]} & set(ACTIVITY_FIELDS))
    power = np.array([board.get(r[0], (np.nan, 0))[0] for r in rows])
    return build_telemetry(
        time_s=np.array([r[0] * interval_s for r in rows], dtype=np.float64),
        gpu_uuid=[gpu_uuid] * len(rows),
        gpu_instance_id=[r[1] for r in rows],
        profile=[profiles[r[1]] for r in rows],
        board_power_w=power,
        activity={f: np.array([r[2].get(f, np.nan) for r in rows]) for f in fields},
        source_format="dmon",
        row_numbers=np.array([r[3] for r in rows], dtype=np.intp),
    )
