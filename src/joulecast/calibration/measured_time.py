"""The power model alone: fitted energies priced over the measured pass time.

An estimate's power error mixes two models: the time model sets the pass time ``T`` (and with it
the idle and SM-cycle energy), the power model prices the events. This diagnostic removes the
first: each measured row is priced with the same fitted coefficients as the estimate
(leave-one-model-out fits for the held-out model) but over its *measured* pass time and clock,
``P = idle(f) + Σ energy-per-event × events ÷ T_measured``. What error remains is the power
model's. It is not a bound on the estimate: time errors can cancel energy errors, so the estimate
may do better than this figure on some rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from joulecast.calibration.data import Measurement
from joulecast.coefficients.params import GpuCoefficients
from joulecast.dvfs import dvfs_curve
from joulecast.errors import CalibrationError
from joulecast.hardware.spec import load_gpu
from joulecast.power import coefficient_vector, pass_events
from joulecast.timeline import compile_workload


@dataclass(frozen=True)
class MeasuredTimePower:
    """Power MAPE (%) of one measurement set with the measured pass time given."""

    gpu: str
    n_rows: int
    in_sample: float
    lomo: float
    lomo_by_model: dict[str, float] = field(default_factory=dict)


def power_error_at_measured_time(row: Measurement, coeffs: GpuCoefficients) -> float:
    """Signed relative power error of ``row`` priced by ``coeffs`` over its measured time."""
    spec = load_gpu(row.gpu)
    curve = dvfs_curve(spec)
    cw = compile_workload(row.load_workload(), spec)
    clock = np.array([row.fit_clock_mhz])
    events = pass_events(cw, coeffs.time, clock, curve.v2_ratio(clock, coeffs.ref_clock_mhz))
    dynamic_j = float(events @ coefficient_vector(coeffs.power))
    idle_w = float(curve.idle_power(clock)[0]) + coeffs.power.idle_offset_w
    return (idle_w + dynamic_j / row.time_s) / row.power_w - 1.0


def power_at_measured_time(
    rows: Sequence[Measurement],
    fits: dict[str | None, GpuCoefficients],
) -> MeasuredTimePower:
    """The diagnostic over ``rows`` (measurements of one GPU).

    Args:
        rows: the measured rows to price.
        fits: fitted coefficients keyed by the held-out model (``None``: fitted on every model).
    """
    if not rows:
        raise CalibrationError("power at the measured time: no rows")
    in_sample = [abs(power_error_at_measured_time(r, fits[None])) * 100 for r in rows]
    by_model: dict[str, list[float]] = {}
    for r in rows:
        err = abs(power_error_at_measured_time(r, fits[r.model])) * 100
        by_model.setdefault(r.model, []).append(err)
    lomo = [e for errs in by_model.values() for e in errs]
    return MeasuredTimePower(
        rows[0].gpu,
        len(rows),
        float(np.mean(in_sample)),
        float(np.mean(lomo)),
        {m: float(np.mean(errs)) for m, errs in sorted(by_model.items())},
    )
