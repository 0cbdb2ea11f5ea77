"""Power-sensor alignment: delay and first-order averaging of activity to match the reading."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from joulecast.mig.frame import FloatArray


def _shift(x: FloatArray, lag: int) -> FloatArray:
    """Delay a series by ``lag`` samples along axis 0 (the first value is held)."""
    if lag <= 0:
        return x
    return np.concatenate([np.repeat(x[:1], lag, axis=0), x[:-lag]], axis=0)


def sensor_filter(x: FloatArray, tau_samples: float) -> FloatArray:
    """First-order averaging along axis 0, as a power sensor does (``tau`` in samples)."""
    if tau_samples <= 0:
        return x
    alpha = 1.0 - float(np.exp(-1.0 / tau_samples))
    zi_shape = (1, *x.shape[1:])
    zi = (1.0 - alpha) * x[:1].reshape(zi_shape)
    out, _ = lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=zi)
    return np.asarray(out, dtype=np.float64)


def estimate_sensor(
    power_w: FloatArray, proxy_w: FloatArray, max_lag: int, taus: tuple[float, ...]
) -> tuple[int, float]:
    """Lag (samples) and averaging constant (samples) that best line activity up with power.

    Maximises the correlation of first differences of the power and of the delayed, filtered
    activity proxy (modelled watts); first differences remove the static level and slow drift.
    """
    if power_w.size < 4 * max_lag + 16 or proxy_w.std() == 0:
        return 0, 0.0
    dp = np.diff(power_w)
    best, best_c = (0, 0.0), -np.inf
    for tau in taus or (0.0,):
        filtered = sensor_filter(proxy_w, tau)
        for lag in range(max(max_lag, 0) + 1):
            da = np.diff(_shift(filtered, lag))
            sx = da.std()
            if sx == 0:
                continue
            c = float(np.corrcoef(da, dp)[0, 1])
            if c > best_c:
                best, best_c = (lag, tau), c
    return best
