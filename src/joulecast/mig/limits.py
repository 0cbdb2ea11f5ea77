"""Physical bounds on MIG telemetry, checked once, where values enter.

File readers reject a value outside these bounds with one :class:`TelemetryError` line naming the
row; the live service drops such a sample, counts it and logs it. Nothing downstream (frames,
attribution, counters) has to guard against NaN, infinities or negative watts again.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from joulecast.errors import TelemetryError

#: Absolute upper bound on board power (W): above the maximum power limit of every part
#: joulecast knows (B200 1000 W, H100/H200 SXM 700 W, A100 400 W) with room for newer boards.
#: A reading above it is a unit or sensor error (1e20 W), not a hot GPU.
MAX_BOARD_POWER_W = 2000.0
#: Latest accepted timestamp (s): year 2286. Millisecond epoch times (about 1.7e12) are caught.
MAX_TIMESTAMP_S = 1e10
#: Largest accepted board energy counter (J): 2000 W for 15,000 years.
MAX_ENERGY_COUNTER_J = 1e15
#: Longest accepted sample or poll period (s).
MAX_INTERVAL_S = 86400.0
#: Largest telemetry file read into memory (bytes); a day at 1 Hz and 7 instances is 73 MB.
MAX_TELEMETRY_BYTES = 2 * 1024**3
#: Largest dcgm-exporter reply accepted by the live service (bytes); a real scrape is ~100 kB.
MAX_SCRAPE_BYTES = 64 * 1024**2

#: Longest GPU UUID, GPU-instance id or profile name (a UUID is 40 characters).
MAX_NAME_CHARS = 128
#: Largest activity value: ratios are 0..1 (a little above is a DCGM quirk), percent 0..100.
MAX_ACTIVITY = 100.0

#: field -> (largest value, unit) for the checked quantities; any other field is an activity.
_UPPER: dict[str, tuple[float, str]] = {
    "timestamp_s": (MAX_TIMESTAMP_S, "s"),
    "board_power_w": (MAX_BOARD_POWER_W, "W"),
    "energy_counter_j": (MAX_ENERGY_COUNTER_J, "J"),
}
_ACTIVITY_UPPER = (MAX_ACTIVITY, "(percent)")
_ACCEPTED: dict[str, str] = {
    "timestamp_s": f"0..{MAX_TIMESTAMP_S:g} s (seconds since the epoch or since the start)",
    "board_power_w": f"0..{MAX_BOARD_POWER_W:g} W",
    "energy_counter_j": f"0..{MAX_ENERGY_COUNTER_J:g} J",
}


def value_problem(field: str, value: float) -> str | None:
    """Why one sample value cannot be used, or None when it can (NaN means missing: usable).

    Args:
        field: ``timestamp_s``, ``board_power_w``, ``energy_counter_j`` or an activity field.
        value: The value in the field's unit.

    Returns:
        ``"not finite"``, ``"negative"``, ``"above <bound> <unit>"`` or None.
    """
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "not finite"
    if value < 0.0:
        return "negative"
    upper = _UPPER.get(field, _ACTIVITY_UPPER)
    if value > upper[0]:
        return f"above {upper[0]:g} {upper[1]}"
    return None


def problem_kind(problem: str) -> str:
    """Metric label of a :func:`value_problem` text: not_finite, negative or above_bound."""
    return {"not finite": "not_finite", "negative": "negative"}.get(problem, "above_bound")


def check_column(field: str, values: NDArray[np.float64], where: Callable[[int], str]) -> None:
    """Reject the first value of a column that :func:`value_problem` refuses (NaN is allowed).

    Args:
        field: Field name (selects the bound).
        values: The column.
        where: Names the k-th value for the message (``"long-csv: row 12"``).

    Raises:
        TelemetryError: One line naming the value, the place and the accepted range.
    """
    upper = _UPPER.get(field, _ACTIVITY_UPPER)[0]
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (values < 0.0) | (values > upper)
    if not bad.any():
        return
    k = int(np.flatnonzero(bad)[0])
    value = float(values[k])
    problem = value_problem(field, value)
    accepted = _ACCEPTED.get(field, "ratios 0..1 or percent 0..100")
    raise TelemetryError(f"{where(k)}: {field} {value:g} is {problem}; expected {accepted}")


def check_name(what: str, text: str, where: str) -> None:
    """Reject a GPU UUID, instance id or profile that would garble one-line messages.

    Raises:
        TelemetryError: On control characters (a newline from a quoted field) or a name longer
            than :data:`MAX_NAME_CHARS`.
    """
    if len(text) <= MAX_NAME_CHARS and text.isprintable():
        return
    cut = "..." if len(text) > 40 else ""
    raise TelemetryError(
        f"{where}: {what} {text[:40]!r}{cut} is not a plain name "
        f"(control characters, or longer than {MAX_NAME_CHARS} characters)"
    )


def check_setting(name: str, value: float | None, *, positive: bool, upper: float) -> None:
    """Check a numeric option (``--interval-s``, ``--idle-power-w``).

    Args:
        name: Option name for the message.
        value: The value (None means not given: nothing to check).
        positive: Require > 0 (else >= 0).
        upper: Largest accepted value.

    Raises:
        TelemetryError: On NaN, infinity, or a value out of range.
    """
    if value is None:
        return
    low_ok = value > 0.0 if positive else value >= 0.0
    if not (math.isfinite(value) and low_ok and value <= upper):
        low = "> 0" if positive else ">= 0"
        raise TelemetryError(f"{name} must be {low} and at most {upper:g}, got {value:g}")
