"""dcgm-exporter metrics: Prometheus text exposition (one or more scrapes) or ``query_range`` JSON.

Files are strict: a value outside :mod:`joulecast.mig.limits` is an error naming its line. The
live service reads one scrape at a time in stream mode (``rejects`` given): such samples are
dropped and counted instead, and a GPU left without board power is left out of that poll.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping

import numpy as np

from joulecast.errors import TelemetryError
from joulecast.mig.frame import ACTIVITY_FIELDS, Telemetry, build_telemetry
from joulecast.mig.limits import problem_kind, value_problem

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

Sample = tuple[str, dict[str, str], float, float | None]

_SAMPLE_RE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+(?P<ts>-?\d+))?\s*$"
)
_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _numbered_samples(text: str) -> Iterator[tuple[str, Sample]]:
    """Samples of exposition text with the line each came from (``"line 7"``)."""
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
                f"prometheus: line {lineno}: bad value {m.group('value')[:40]!r}"
            ) from None
        ts = m.group("ts")
        stamp = None if ts is None else (int(ts) / 1000.0 if len(ts) < 40 else float("inf"))
        yield f"line {lineno}", (m.group("name"), labels, value, stamp)


def parse_prometheus_samples(text: str) -> list[Sample]:
    """Parse Prometheus text exposition into (name, labels, value, timestamp_s or None).

    Args:
        text: Exposition text (``# HELP``/``# TYPE`` lines are skipped).

    Returns:
        The samples in file order (values as written, not checked against the bounds).

    Raises:
        TelemetryError: On a line that is not a sample.
    """
    return [s for _, s in _numbered_samples(text)]


def _query_range_samples(text: str) -> Iterator[tuple[str, Sample]]:
    """Samples of a Prometheus ``query_range`` JSON response (``resultType: matrix``)."""
    try:
        result = json.loads(text)["data"]["result"]
        if not isinstance(result, list):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise TelemetryError(
            "prometheus: JSON is not a query_range response (data.result)"
        ) from None
    for k, series in enumerate(result):
        metric = series.get("metric", {}) if isinstance(series, dict) else None
        values = series.get("values", []) if isinstance(series, dict) else None
        if not isinstance(metric, dict) or not isinstance(values, list):
            raise TelemetryError(f"prometheus: JSON series {k} has no metric/values")
        labels = {str(a): str(b) for a, b in metric.items()}
        name = labels.pop("__name__", "")
        for j, point in enumerate(values):
            try:
                ts, value = point
                sample = (name, labels, float(value), float(ts))
            except (TypeError, ValueError):
                raise TelemetryError(
                    f"prometheus: JSON series {k} point {j} is not [time, value]"
                ) from None
            yield f"series {k} point {j}", sample


def _label(labels: Mapping[str, str], *names: str) -> str | None:
    for n in names:
        if n in labels and labels[n] != "":
            return labels[n]
    return None


def _quantity(field: str, value: float) -> tuple[str, float]:
    """The checked quantity of a metric field and the value in its unit."""
    if field == "energy_mj":
        return "energy_counter_j", value / 1000.0
    return field, value


def read_prometheus(
    text: str,
    *,
    interval_s: float | None = None,
    scrape_time_s: float | None = None,
    rejects: Counter[str] | None = None,
) -> Telemetry:
    """Read dcgm-exporter metrics: one or more concatenated scrapes, or a ``query_range`` JSON.

    Scrapes without sample timestamps are told apart by a series repeating; the k-th scrape is
    stamped ``scrape_time_s + k * interval_s``, so several of them need ``interval_s``.

    Args:
        text: Exposition text or Prometheus HTTP API JSON (``resultType: matrix``).
        interval_s: Scrape period, required when several scrapes carry no timestamps.
        scrape_time_s: Time of the first scrape when samples carry no timestamp.
        rejects: Stream mode: count unusable samples here (``"board_power_w not_finite"``)
            and leave them out, instead of raising.

    Returns:
        Parsed telemetry.

    Raises:
        TelemetryError: On a malformed line, a value outside :mod:`joulecast.mig.limits` (files),
            scrapes without timestamps and no ``interval_s``, no MIG instance data or no board
            power.
    """
    if text.lstrip().startswith("{"):
        samples = _query_range_samples(text)
    else:
        samples = _numbered_samples(text)
    base = 0.0 if scrape_time_s is None else scrape_time_s
    # (time, uuid) -> board values; (time, uuid, gi, profile) -> fields
    board: dict[tuple[float, str], dict[str, float]] = {}
    inst: dict[tuple[float, str, str, str], dict[str, float]] = {}
    seen: set[tuple[str, str, str]] = set()
    scrape = 0
    untimed = False
    for where, (name, labels, value, ts) in samples:
        field = DCGM_METRICS.get(name)
        if field is None:
            continue
        quantity, scaled = _quantity(field, value)
        problem = value_problem(quantity, scaled)
        bad = quantity
        if problem is None and ts is not None:
            problem, bad = value_problem("timestamp_s", ts), "timestamp_s"
        if problem is not None:
            if rejects is None:
                shown = value if bad != "timestamp_s" else ts
                raise TelemetryError(f"prometheus: {where}: {name} {bad} {shown:g} is {problem}")
            rejects[f"{bad} {problem_kind(problem)}"] += 1
            continue
        uuid = _label(labels, "UUID", "uuid") or f"gpu{_label(labels, 'gpu') or '0'}"
        gi = _label(labels, "GPU_I_ID")
        if ts is None:
            untimed = True
            key = (name, uuid, gi or "")
            if key in seen:
                scrape += 1
                seen = set()
            seen.add(key)
            t = base + scrape * (interval_s or 0.0)
        else:
            t = ts
        if field in ("board_power_w", "energy_mj"):
            board.setdefault((t, uuid), {})[field] = value
        elif gi is not None:
            prof = _label(labels, "GPU_I_PROFILE") or ""
            inst.setdefault((t, uuid, gi, prof), {})[field] = value
    if untimed and scrape and interval_s is None:
        raise TelemetryError(
            f"prometheus: {scrape + 1} scrapes without sample timestamps; pass --interval-s "
            "(the scrape period)"
        )
    if rejects is not None and inst:
        powered = {u for (_, u), v in board.items() if "board_power_w" in v}
        for u in sorted({k[1] for k in inst} - powered):
            rejects["board_power_w missing"] += 1
            inst = {k: v for k, v in inst.items() if k[1] != u}
        if not inst:
            raise TelemetryError("prometheus: no GPU with a usable board power in this scrape")
    return _telemetry(board, inst)


def _telemetry(
    board: dict[tuple[float, str], dict[str, float]],
    inst: dict[tuple[float, str, str, str], dict[str, float]],
) -> Telemetry:
    """Long rows from the collected samples."""
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
