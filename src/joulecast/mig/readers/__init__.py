"""Telemetry readers: long CSV, dcgm-exporter Prometheus text, ``dcgmi dmon``, nvidia-smi CSV.

One module per format; every reader ends in :func:`joulecast.mig.frame.build_telemetry`, so the
quirk handling (board power repeated per instance row, ratios slightly above 1, blanks, odd
profile names) and the value bounds (:mod:`joulecast.mig.limits`) are shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from joulecast.errors import TelemetryError
from joulecast.mig.frame import Telemetry
from joulecast.mig.limits import MAX_INTERVAL_S, check_setting
from joulecast.mig.readers.dmon import read_dmon
from joulecast.mig.readers.long_csv import (
    LONG_CSV_HEADER,
    read_long_csv,
    read_long_csv_checked,
)
from joulecast.mig.readers.nvidia_smi import read_nvidia_smi
from joulecast.mig.readers.prometheus import (
    DCGM_METRICS,
    parse_prometheus_samples,
    read_prometheus,
)
from joulecast.mig.readers.text import decode_utf8, read_telemetry_bytes

__all__ = [
    "DCGM_METRICS",
    "LONG_CSV_HEADER",
    "InputFormat",
    "detect_format",
    "parse_profiles_option",
    "parse_prometheus_samples",
    "read_dmon",
    "read_long_csv",
    "read_nvidia_smi",
    "read_prometheus",
    "read_telemetry",
]

InputFormat = Literal["auto", "long-csv", "prometheus", "dmon", "nvidia-smi"]


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
        interval_s: Sample period for formats without timestamps (dmon: 1 s when not given;
            Prometheus scrapes without timestamps: required).

    Returns:
        Parsed telemetry.

    Raises:
        TelemetryError: One line: a missing, folder, unreadable or non-UTF-8 file, a bad
            ``interval_s``, or anything the format's reader rejects.
    """
    check_setting("--interval-s", interval_s, positive=True, upper=MAX_INTERVAL_S)
    data = read_telemetry_bytes(path)
    text = decode_utf8(data, f"telemetry {path.name}")
    fmt = detect_format(text[:8192]) if input_format == "auto" else input_format
    if fmt == "long-csv":
        return read_long_csv_checked(data)
    if fmt == "prometheus":
        return read_prometheus(text, interval_s=interval_s)
    if fmt == "dmon":
        return read_dmon(text, profiles=profiles or {}, interval_s=interval_s or 1.0)
    return read_nvidia_smi(text, profiles=profiles or {})
