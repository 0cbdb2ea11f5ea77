"""Per-row predictions of the accuracy report: joulecast's estimate and the comparison baseline.

The baseline is a three-feature regression (GEMM FLOPs ÷ peak, bytes ÷ bandwidth, kernel count)
fitted with NNLS for time and for energy; :func:`joulecast.calibration.validate.gpu_report`
applies both in-sample and leave-one-model-out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.optimize import nnls

from joulecast.calibration.data import Measurement
from joulecast.coefficients.host import Host
from joulecast.coefficients.params import GpuCoefficients
from joulecast.estimator import estimate
from joulecast.hardware.spec import load_gpu
from joulecast.workload.ir import Attention, Conv2d, Gemm, Precision


@dataclass(frozen=True)
class Prediction:
    """Measured and predicted values of one row."""

    row: Measurement
    time_s: float
    power_w: float
    energy_j: float
    clock_mhz: float

    @property
    def errors(self) -> tuple[float, float, float]:
        """Signed relative errors of time, power, energy."""
        r = self.row
        return (
            self.time_s / r.time_s - 1,
            self.power_w / r.power_w - 1,
            self.energy_j / r.energy_j - 1,
        )


def mape(preds: Sequence[Prediction]) -> tuple[float, float, float]:
    """Mean absolute percentage error of time, power and energy."""
    if not preds:
        return (float("nan"),) * 3
    e = np.abs(np.array([p.errors for p in preds])) * 100
    m = e.mean(axis=0)
    return float(m[0]), float(m[1]), float(m[2])


def predict_rows(
    rows: Sequence[Measurement], coeffs: GpuCoefficients | None, host: Host | None
) -> list[Prediction]:
    """Run the estimator on each row at its requested clock (``coeffs=None``: the shipped or
    physics-transferred coefficients of the row's GPU; ``host=None``: its default host)."""
    out = []
    for r in rows:
        e = estimate(
            r.load_workload(),
            r.gpu,
            sm_clock_mhz=r.requested_clock_mhz,
            coefficients=coeffs,
            host=host,
            detail=False,
        )
        out.append(Prediction(r, e.time_s, e.avg_power_w, e.energy_j, e.sm_clock_mhz))
    return out


@cache
def _baseline_features(r: Measurement) -> np.ndarray:
    """GEMM FLOPs ÷ tensor peak, compulsory bytes ÷ DRAM bandwidth, kernel count (kernel list).

    Cached: a row's features do not depend on the fold, and every fold reuses them.
    """
    from joulecast.models.graph import op_bytes

    gpu = load_gpu(r.gpu)
    w = r.load_kernel_list()
    peak = gpu.tensor_flops_per_s(Precision(r.precision), r.requested_clock_mhz)
    gemm_flops = sum(op.flops for op in w.ops if isinstance(op, Gemm | Conv2d | Attention))
    moved = sum(op_bytes(op) for op in w.ops)
    x = np.array([gemm_flops / peak, moved / gpu.memory_bandwidth_b_s, float(len(w))])
    x.flags.writeable = False
    return x


def baseline(train: Sequence[Measurement], test: Sequence[Measurement]) -> list[Prediction]:
    """Three-feature NNLS regression (the comparison baseline).

    Time = NNLS on (GEMM FLOPs ÷ peak, bytes ÷ bandwidth, kernel count); power = NNLS on an idle
    intercept plus the same three features divided by the pass time (their utilisations).
    """
    xt = np.array([_baseline_features(r) for r in train])
    t = np.array([r.time_s for r in train])
    p = np.array([r.power_w for r in train])
    a_t, _ = nnls(xt / t[:, None], np.ones_like(t))  # relative-error weighting
    xp = np.column_stack([np.ones_like(t), xt / t[:, None]])
    a_p, _ = nnls(xp / p[:, None], np.ones_like(p))
    out = []
    for r in test:
        x = _baseline_features(r)
        tp = float(x @ a_t)
        pp = float(np.concatenate([[1.0], x / tp]) @ a_p)
        out.append(Prediction(r, tp, pp, pp * tp, r.requested_clock_mhz))
    return out


def leave_one_model_out(
    rows: Sequence[Measurement],
    predict: Callable[[Sequence[Measurement], Sequence[Measurement]], list[Prediction]],
) -> list[Prediction]:
    """``predict(train, test)`` for each model family held out of ``rows`` in turn."""
    out: list[Prediction] = []
    for model in sorted({r.model for r in rows}):
        train = [r for r in rows if r.model != model]
        test = [r for r in rows if r.model == model]
        out += predict(train, test)
    return out
