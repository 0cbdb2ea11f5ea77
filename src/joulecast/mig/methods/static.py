"""Static (idle) power estimates shared by the attribution methods.

Ratio methods take the all-idle floor (:func:`estimate_idle_floor`); the online method prefers a
direct measurement on settled all-idle samples (:func:`settled_idle_power`) and falls back on its
regression intercept.
"""

from __future__ import annotations

import numpy as np

from joulecast.mig.frame import GpuTelemetry
from joulecast.mig.methods.base import ModelInputs


def estimate_idle_floor(gpu: GpuTelemetry, inputs: ModelInputs) -> tuple[float, str]:
    """Static power for ratio methods: the median power while no instance is busy.

    Kepler takes the minimum; with a noisy sensor that is biased low, so the median of all-idle
    samples is used. With too few idle samples the 1st percentile is the (upward-biased) fallback.
    """
    idle = ~inputs.active.any(axis=1)
    if int(idle.sum()) >= 10:
        return float(np.median(gpu.board_power_w[idle])), "all-idle median"
    return float(np.percentile(gpu.board_power_w, 1.0)), "1st percentile (no all-idle samples)"


def settled_idle_power(
    gpu: GpuTelemetry, inputs: ModelInputs, *, settle_s: float = 5.0, min_samples: int = 30
) -> float | None:
    """Median board power while every instance is idle, skipping the sensor's settling time.

    This is a direct measurement of static power (reference §5.3, first choice) and is preferred
    to the regression intercept, which convex cross-partition effects bias low.

    Returns:
        The static power, or None when there are fewer than ``min_samples`` settled idle samples.
    """
    busy = inputs.active.any(axis=1)
    t = gpu.time_s
    last_busy = np.maximum.accumulate(np.where(busy, t, -np.inf))
    ok = ~busy & (t - last_busy > settle_s)
    if int(ok.sum()) < min_samples:
        return None
    return float(np.median(gpu.board_power_w[ok]))
