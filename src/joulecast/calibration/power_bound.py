"""How low the power error can go with the power model's event counts: an oracle bound.

The power model prices a pass as ``idle(f) + Σ energy-per-event × events ÷ T``. This module asks
what the best non-negative energies could achieve on a measurement set if two things no forecast
has were given:

* the **measured pass time** ``T`` (so no error comes from the time model's pass time), and
* energies chosen to minimise **the reported statistic itself**: a linear programme picks the
  non-negative coefficients that minimise the sum of absolute relative power errors (the power
  MAPE) of the training rows, instead of least squares on energy.

Events (busy time, SM-cycles, tensor and CUDA-core FLOPs, L2 and DRAM bytes, elements) are counted
from the kernel times of the time model fitted without the held-out model. The leave-one-model-out
figure is therefore a lower bound on what any fit of these features reaches under the same
protocol: if it misses a target, the target needs information the event counts do not carry, not
a better fitting procedure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog

from joulecast.calibration.data import Measurement, training_rows
from joulecast.calibration.params import GpuCoefficients
from joulecast.dvfs import dvfs_curve
from joulecast.errors import CalibrationError
from joulecast.hardware.spec import load_gpu
from joulecast.power import event_matrix
from joulecast.timeline import CompiledWorkload, compile_workload, kernel_times


@dataclass(frozen=True)
class PowerBound:
    """Best achievable power MAPE (%) of one measurement set, with the measured pass time."""

    gpu: str
    n_rows: int
    in_sample: float
    lomo: float
    lomo_by_model: dict[str, float] = field(default_factory=dict)


def _relative_power_system(
    rows: list[Measurement],
    compiled: list[CompiledWorkload],
    coeffs: GpuCoefficients,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``X, y`` such that ``X @ c - y`` is each row's relative power error for energies ``c``."""
    curve = dvfs_curve(compiled[0].gpu)
    fit_idle = not curve.measured
    x_rows, y = [], []
    for r, cw in zip(rows, compiled, strict=True):
        clock = np.array([r.fit_clock_mhz])
        t_u = kernel_times(cw, coeffs.time, clock)
        v2 = curve.v2_ratio(clock, coeffs.ref_clock_mhz)
        events = (cw.count[:, None] * event_matrix(cw, t_u, clock, v2)[:, 0, :]).sum(axis=0)
        # Parts without a measured idle table get a constant-power column (the fit's idle term).
        extra = [1.0] if fit_idle else []
        x_rows.append(np.concatenate([events / r.time_s, extra]) / r.power_w)
        idle_w = 0.0 if fit_idle else float(curve.idle_power(clock)[0])
        y.append((r.power_w - idle_w) / r.power_w)
    return np.array(x_rows), np.array(y)


def _least_absolute(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Non-negative ``c`` minimising ``Σ|x c - y|`` (a linear programme)."""
    n, k = x.shape
    eye = np.eye(n)
    res = linprog(
        np.concatenate([np.zeros(k), np.ones(n)]),
        A_ub=np.block([[x, -eye], [-x, -eye]]),
        b_ub=np.concatenate([y, -y]),
        bounds=[(0, None)] * (k + n),
        method="highs",
    )
    if not res.success:
        raise CalibrationError(f"power bound: linear programme failed ({res.message})")
    return np.asarray(res.x[:k], dtype=np.float64)


def power_bound(
    data_dir: Path,
    set_name: str,
    gpu: str,
    fits: dict[str | None, GpuCoefficients],
) -> PowerBound:
    """The oracle bound of ``set_name`` (see the module docstring).

    Args:
        data_dir: reference data folder.
        set_name: measurement set (``a100``, ``a10``).
        gpu: GPU id of the set.
        fits: fitted coefficients keyed by the held-out model (``None``: fitted on every model);
            only their time coefficients and reference clock are used.
    """
    spec = load_gpu(gpu)
    train = training_rows(data_dir, set_name)
    # Fitted on the set plus its extra training sets (the A100's DVFS sweep), reported on the
    # set's own rows, as the leave-one-model-out table is.
    is_eval = np.array([r.set_name == set_name for r in train])
    models = np.array([r.model for r in train])
    compiled = [compile_workload(r.load_workload(), spec) for r in train]

    x, y = _relative_power_system(train, compiled, fits[None])
    c = _least_absolute(x, y)
    in_sample = float(np.mean(np.abs(x[is_eval] @ c - y[is_eval])) * 100)

    errors: list[float] = []
    by_model: dict[str, float] = {}
    for model in sorted(set(models[is_eval].tolist())):
        x, y = _relative_power_system(train, compiled, fits[model])
        held = models == model
        c = _least_absolute(x[~held], y[~held])
        sel = held & is_eval
        e = np.abs(x[sel] @ c - y[sel]) * 100
        by_model[model] = float(e.mean())
        errors += e.tolist()
    return PowerBound(gpu, int(is_eval.sum()), in_sample, float(np.mean(errors)), by_model)
