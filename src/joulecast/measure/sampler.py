"""The power, clock and temperature timeline, sampled in the background while work runs.

:class:`Sampler` reads every GPU's power, SM clock and temperature each ``period_s`` through
:meth:`Clock.every <joulecast.measure.meter.Clock.every>` (a background thread on the real clock,
in step with time on a fake one), and once more when stopped. A reading the part does not
support is kept as NaN in the arrays and shows as "not readable" (``None``) in every summary.
:meth:`Timeline.energy_j` integrates power over a window: the fallback where the part has no
energy counter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from joulecast.measure.meter import Clock, GpuMeter, MeasureError, NotSupportedError, Ticker

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Timeline:
    """Samples of one GPU; NaN marks a reading the part does not support."""

    gpu: int
    time_s: FloatArray
    power_w: FloatArray
    sm_clock_mhz: FloatArray
    temperature_c: FloatArray

    def __len__(self) -> int:
        return len(self.time_s)

    def covering(self, t0_s: float, t1_s: float) -> NDArray[np.bool_]:
        """The samples that span [t0, t1]: those inside it, plus the last one at or before t0
        and the first one at or after t1 (a window shorter than the period still has two)."""
        t = self.time_s
        before, after = t[t <= t0_s], t[t >= t1_s]
        lo = before.max() if before.size else t0_s
        hi = after.min() if after.size else t1_s
        return np.asarray((t >= lo) & (t <= hi))

    def _in(self, t0_s: float, t1_s: float, values: FloatArray) -> FloatArray:
        return values[self.covering(t0_s, t1_s) & np.isfinite(values)]

    def mean(self, values: FloatArray, t0_s: float, t1_s: float) -> float | None:
        """Mean of ``values`` (one of this timeline's arrays) over the samples spanning
        [t0, t1] (:meth:`covering`), or ``None`` when none of them could be read."""
        v = self._in(t0_s, t1_s, values)
        return float(v.mean()) if v.size else None

    def maximum(self, values: FloatArray, t0_s: float, t1_s: float) -> float | None:
        """Largest readable value over the samples spanning [t0, t1], or ``None``."""
        v = self._in(t0_s, t1_s, values)
        return float(v.max()) if v.size else None

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """Energy over [t0, t1]: trapezoids through the readable power samples, linearly
        interpolated at the window's edges (held constant beyond the first and last sample).

        Raises:
            MeasureError: fewer than two readable power samples.
        """
        ok = np.isfinite(self.power_w)
        t, p = self.time_s[ok], self.power_w[ok]
        if t.size < 2:
            raise MeasureError(
                f"GPU {self.gpu}: no energy counter and only {t.size} readable power sample(s): "
                "nothing to integrate (lengthen the window or shorten the sample period)"
            )
        inner = t[(t > t0_s) & (t < t1_s)]
        grid = np.concatenate(([t0_s], inner, [t1_s]))
        values = np.interp(grid, t, p)
        return float(np.sum(np.diff(grid) * (values[1:] + values[:-1]) / 2.0))


class Sampler:
    """Samples power, SM clock and temperature of ``gpus`` every ``period_s``.

    Args:
        meter: the GPUs.
        gpus: indices to sample.
        clock: time source; its :meth:`~joulecast.measure.meter.Clock.every` runs the ticks.
        period_s: sample period (NVML's power reading refreshes about every 20-100 ms).
    """

    def __init__(
        self, meter: GpuMeter, gpus: Sequence[int], clock: Clock, period_s: float = 0.1
    ) -> None:
        if not period_s > 0 or not math.isfinite(period_s):
            raise MeasureError(f"sample period must be a positive number of seconds: {period_s}")
        self._meter, self._gpus, self._clock, self._period_s = meter, tuple(gpus), clock, period_s
        self._t: list[float] = []
        self._rows: list[list[tuple[float, float, float]]] = [[] for _ in self._gpus]
        self._ticker: Ticker | None = None

    def _read(self, fn: Callable[[int], int], gpu: int, scale: float) -> float:
        try:
            return fn(gpu) * scale
        except NotSupportedError:
            return math.nan

    def _tick(self) -> None:
        m = self._meter
        self._t.append(self._clock.now_s())
        for rows, g in zip(self._rows, self._gpus, strict=True):
            rows.append(
                (
                    self._read(m.power_mw, g, 1e-3),
                    self._read(m.sm_clock_mhz, g, 1.0),
                    self._read(m.temperature_c, g, 1.0),
                )
            )

    def start(self) -> None:
        """Take the first sample now and start the periodic ones."""
        self._ticker = self._clock.every(self._period_s, self._tick)

    def stop(self) -> tuple[Timeline, ...]:
        """Stop sampling, take a last sample, and return one timeline per GPU."""
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._tick()
        t = np.asarray(self._t, dtype=np.float64)
        out = []
        for g, rows in zip(self._gpus, self._rows, strict=True):
            arr = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
            out.append(Timeline(g, t.copy(), arr[:, 0], arr[:, 1], arr[:, 2]))
        return tuple(out)
