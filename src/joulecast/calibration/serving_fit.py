"""Fit the serving engine's CPU cost per step on the ML.ENERGY v3 rows (two parameters).

A vLLM step with async scheduling lasts ``max(GPU step, CPU step)``; the CPU step is
``serving_step_s + serving_per_sequence_s × running sequences`` (scheduling, input preparation,
sampling, detokenisation grow with the batch). The GPU step of every row comes from the model
with no CPU cost, once; the two CPU parameters (s, s per sequence, non-negative) are then fitted
by bounded least squares on log ITL. Energy follows: the GPUs draw idle power while they wait.
:func:`leave_one_model_out` refits them without each model in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from joulecast.calibration.serving_report import ServingPoint
from joulecast.errors import CalibrationError


@dataclass(frozen=True)
class CpuFit:
    """Fitted CPU cost of a serving step.

    Attributes:
        step_s: CPU time of a step with no sequence running.
        per_sequence_s: its growth per running sequence.
        rows: rows fitted on.
    """

    step_s: float
    per_sequence_s: float
    rows: int


@dataclass(frozen=True)
class _Arrays:
    gpu_s: NDArray[np.float64]
    energy_j: NDArray[np.float64]  # per step, all GPUs, with no CPU wait
    idle_w: NDArray[np.float64]  # all GPUs
    sequences: NDArray[np.float64]  # per scheduler
    running: NDArray[np.float64]
    itl_s: NDArray[np.float64]
    j_per_token: NDArray[np.float64]


def _arrays(points: Sequence[ServingPoint]) -> _Arrays:
    fs = [p.forecast for p in points]
    if any(f is None for f in fs):
        raise CalibrationError("serving fit: every point needs a forecast")
    gpu = np.array([f.step.gpu_s for f in fs if f])
    running = np.array([float(f.running_batch) for f in fs if f])
    return _Arrays(
        gpu_s=gpu,
        energy_j=np.array([f.energy_per_token_j * f.running_batch for f in fs if f]),
        idle_w=np.array([f.step.idle_power_w * f.num_gpus for f in fs if f]),
        sequences=np.array([f.running_batch / f.dp for f in fs if f]),
        running=running,
        itl_s=np.array([p.itl_ms / 1e3 for p in points]),
        j_per_token=np.array([p.energy_per_token_j for p in points]),
    )


def _predict(a: _Arrays, fit: CpuFit) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    step = np.maximum(a.gpu_s, fit.step_s + fit.per_sequence_s * a.sequences)
    energy = a.energy_j + a.idle_w * (step - a.gpu_s)
    return step, energy / a.running


def _soft_l1(r: NDArray[np.float64], scale: float = 0.1) -> NDArray[np.float64]:
    z = (r / scale) ** 2
    return np.asarray(2 * scale**2 * (np.sqrt(1 + z) - 1), dtype=np.float64)


def fit_cpu(points: Sequence[ServingPoint]) -> CpuFit:
    """Fit the two CPU parameters on ``points`` (forecast with no CPU cost).

    Raises:
        CalibrationError: fewer than 5 rows.
    """
    if len(points) < 5:
        raise CalibrationError(f"serving fit: need at least 5 rows (got {len(points)})")
    a = _arrays(points)

    def residual(x: NDArray[np.float64]) -> NDArray[np.float64]:
        step, _ = _predict(a, CpuFit(x[0] * 1e-3, x[1] * 1e-6, len(points)))
        return np.asarray(np.log(step / a.itl_s), dtype=np.float64)

    # The step is a max(): flat where the GPU binds, so start from the best point of a grid.
    grid = [(h0, h1) for h0 in np.linspace(0.0, 20.0, 41) for h1 in np.linspace(0.0, 200.0, 41)]
    start = min(grid, key=lambda x: float(np.sum(_soft_l1(residual(np.array(x))))))
    sol = least_squares(residual, np.array(start), bounds=(0.0, np.inf), loss="soft_l1",
                        f_scale=0.1)  # fmt: skip
    return CpuFit(float(sol.x[0]) * 1e-3, float(sol.x[1]) * 1e-6, len(points))


def predict(points: Sequence[ServingPoint], fit: CpuFit) -> list[tuple[float, float]]:
    """(ITL in ms, J/token) of each point with the CPU cost ``fit``."""
    step, jpt = _predict(_arrays(points), fit)
    return [(float(s) * 1e3, float(j)) for s, j in zip(step, jpt, strict=True)]


def leave_one_model_out(points: Sequence[ServingPoint]) -> list[tuple[float, float]]:
    """Predictions of each point with the CPU cost fitted on the other models' rows."""
    out: list[tuple[float, float] | None] = [None] * len(points)
    for model in sorted({p.model for p in points}):
        train = [p for p in points if p.model != model]
        test = [i for i, p in enumerate(points) if p.model == model]
        preds = predict([points[i] for i in test], fit_cpu(train))
        for i, pr in zip(test, preds, strict=True):
            out[i] = pr
    return [p for p in out if p is not None]
