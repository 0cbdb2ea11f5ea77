"""joulecast's forecast of every row of a kernel table: GPU time, steady power and clock per call.

* **What is compared.** The measured latency is the GPU time of one call of back-to-back calls,
  so it is compared with joulecast's per-kernel GPU time (:func:`joulecast.timeline.kernel_times`),
  not with a synchronised pass (no host dispatch, no pass overhead). A row whose call runs more
  than one kernel sums its kernels: fp8 GEMMs include the activation quantisation, attention
  calls the KV-cache write (see :func:`joulecast.calibration.kernel_check.calls.attention_ops`).
* **Clock.** The tables were taken with clocks not locked at the default power limit, so every
  row runs at the part's maximum clock unless its predicted steady-state power
  (``idle(f) + E_kernel(f) / t_kernel(f)``, back to back) exceeds the limit; then at the highest
  supported clock that fits, as :func:`joulecast.estimator.estimate` does for a whole pass.
* **Coefficients.** Whatever :func:`joulecast.estimator.coefficients_for` gives for the part
  (shipped, or transferred by physics from the calibrated parts).
* **Rows.** Every row is predicted.

:func:`events_at_measured_latency` isolates the power model: the energy events of a call with the
time-proportional ones taken over the measured latency; :func:`events_at` does the same at a
clock per row (the Hopper energy measurements solve it for power-capped calls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from joulecast.calibration.kernel_check.tables import FloatArray, KernelRows
from joulecast.coefficients import coefficients_for
from joulecast.coefficients.params import GpuCoefficients
from joulecast.dvfs import DvfsCurve, dvfs_curve, regulated_power_w
from joulecast.errors import CalibrationError
from joulecast.hardware.spec import GPUSpec, load_gpu
from joulecast.power import FEATURES, coefficient_vector, event_matrix
from joulecast.timeline import compile_workload, kernel_times
from joulecast.workload.ir import Workload

_CLOCK_CHUNK = 16


@dataclass(frozen=True)
class KernelPrediction:
    """joulecast's forecast of every row: GPU time per call, steady power, and clock."""

    rows: KernelRows
    gpu: str
    coefficients: str
    latency_s: FloatArray
    power_w: FloatArray
    clock_mhz: FloatArray
    throttled: NDArray[np.bool_]

    @property
    def energy_j(self) -> FloatArray:
        return self.power_w * self.latency_s


def predict(
    rows: KernelRows, gpu: GPUSpec | None = None, coefficients: GpuCoefficients | None = None
) -> KernelPrediction:
    """Predict every row at the part's maximum clock, lowered where power exceeds the limit.

    Vectorised: all rows are compiled as one workload (unique shapes costed once), kernel times
    and energies are evaluated over all supported clocks, and each row keeps the highest clock
    whose back-to-back power fits its power limit.
    """
    spec = gpu if gpu is not None else load_gpu(rows.table.gpu)
    coeffs = coefficients if coefficients is not None else coefficients_for(spec)
    if not rows.ops:
        raise CalibrationError(f"{rows.table.name}: no valid rows to predict")
    per_row = len(rows.ops[0])
    if any(len(r) != per_row for r in rows.ops):
        raise CalibrationError(f"{rows.table.name}: rows run different numbers of kernels")
    flat = tuple(op for r in rows.ops for op in r)
    cw = compile_workload(Workload(rows.table.name, flat), spec)
    clocks = np.asarray(spec.supported_clocks_mhz(), dtype=np.float64)
    curve = dvfs_curve(spec)
    idle = curve.idle_power(clocks) + coeffs.power.idle_offset_w
    v2 = curve.v2_ratio(clocks, coeffs.ref_clock_mhz)
    cvec = coefficient_vector(coeffs.power)
    n_u, n_c = len(cw.unique_ops), len(clocks)
    t_u = np.empty((n_u, n_c))
    e_u = np.empty((n_u, n_c))
    for lo in range(0, n_c, _CLOCK_CHUNK):
        sl = slice(lo, lo + _CLOCK_CHUNK)
        t_chunk = kernel_times(cw, coeffs.time, clocks[sl])
        t_u[:, sl] = t_chunk
        e_u[:, sl] = event_matrix(cw, t_chunk, clocks[sl], v2[sl]) @ cvec
    n = len(rows.ops)
    t_row = t_u[cw.order].reshape(n, per_row, n_c).sum(axis=1)
    e_row = e_u[cw.order].reshape(n, per_row, n_c).sum(axis=1)
    p_row = idle[None, :] + e_row / t_row
    cap = (
        rows.power_limit_w
        if rows.power_limit_w is not None
        else np.full(n, spec.default_power_limit_w)
    )
    fits = p_row <= regulated_power_w(cap)[:, None]
    # Highest fitting clock (clocks ascend); the lowest clock when none fits.
    last_fit = n_c - 1 - np.argmax(fits[:, ::-1], axis=1)
    idx = np.where(fits.any(axis=1), last_fit, 0)
    sel = np.arange(n)
    return KernelPrediction(
        rows=rows,
        gpu=spec.id,
        coefficients=coeffs.origin,
        latency_s=np.asarray(t_row[sel, idx], dtype=np.float64),
        power_w=np.asarray(p_row[sel, idx], dtype=np.float64),
        clock_mhz=np.asarray(clocks[idx], dtype=np.float64),
        throttled=np.asarray(idx < n_c - 1),
    )


def events_at_measured_latency(
    rows: KernelRows,
    select: NDArray[np.bool_],
    gpu: GPUSpec | None = None,
    coefficients: GpuCoefficients | None = None,
) -> tuple[FloatArray, float]:
    """Per-call energy events of the selected rows at the part's maximum clock, with the
    time-proportional events (busy power, SM-cycles) taken over the *measured* latency.

    This isolates the power model from the latency model: ``events @ coefficients + idle ·
    latency`` is the energy per call the power model gives when the time is known.

    Returns:
        (events of shape (selected rows, features), in J per unit coefficient; idle power W).
    """
    spec = gpu if gpu is not None else load_gpu(rows.table.gpu)
    coeffs = coefficients if coefficients is not None else coefficients_for(spec)
    ev, idle, _ = events_at(rows, select, spec, coeffs)
    return ev, float(idle[0]) + coeffs.power.idle_offset_w


def events_at(
    rows: KernelRows,
    select: NDArray[np.bool_],
    spec: GPUSpec,
    coeffs: GpuCoefficients,
    clock_mhz: FloatArray | None = None,
    curve: DvfsCurve | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Energy events of the selected rows at per-row clocks, over their measured latency.

    Args:
        rows: a kernel table.
        select: rows to use.
        spec: the part.
        coeffs: its coefficients (time model and reference clock).
        clock_mhz: clock of each selected row (default: the maximum clock).
        curve: V(f) and idle(f) of the part (default: the shipped one).

    Returns:
        (events, shape (rows, features), J per unit coefficient; idle power at each row's
        clock, W; modelled latency of each row over the supported clocks, shape (rows, clocks)).
    """
    idx = np.flatnonzero(select)
    if len(idx) == 0:
        raise CalibrationError(f"{rows.table.name}: no rows selected")
    per_row = len(rows.ops[0])
    cw = compile_workload(
        Workload(rows.table.name, tuple(op for i in idx for op in rows.ops[i])), spec
    )
    clocks = np.asarray(spec.supported_clocks_mhz(), dtype=np.float64)
    n = len(idx)
    t_kernel = kernel_times(cw, coeffs.time, clocks)[cw.order].reshape(n, per_row, -1)
    t_model = t_kernel.sum(axis=1)
    f = np.full(n, float(spec.max_clock_mhz)) if clock_mhz is None else clock_mhz
    # Each kernel's share of the row's modelled time at the row's clock: the measured latency
    # is split between the kernels of a call in that proportion.
    at_f = np.stack(
        [[np.interp(f[j], clocks, t_kernel[j, k]) for k in range(per_row)] for j in range(n)]
    )
    share = at_f / at_f.sum(axis=1, keepdims=True)
    curve = curve if curve is not None else dvfs_curve(spec)
    v2 = curve.v2_ratio(f, coeffs.ref_clock_mhz)
    # Events per launch at 1 MHz, 1 s and V = V_ref, then scaled per row: every column is
    # linear in time, clock and V² (power.event_matrix).
    unit = event_matrix(cw, np.ones((len(cw.unique_ops), 1)), np.array([1.0]), np.array([1.0]))
    per_kernel = unit[:, 0, :][cw.order].reshape(n, per_row, -1)
    lat = rows.latency_s[idx]
    timed = [FEATURES.index("busy_w"), FEATURES.index("sm_pj_per_cycle")]
    per_kernel[:, :, timed] *= share[:, :, None] * lat[:, None, None]
    ev = per_kernel.sum(axis=1)
    scale = np.tile(v2[:, None], (1, len(FEATURES)))
    scale[:, FEATURES.index("sm_pj_per_cycle")] *= f
    scale[:, FEATURES.index("dram_pj_per_byte")] = 1.0
    return np.asarray(ev * scale, dtype=np.float64), curve.idle_power(f), t_model
