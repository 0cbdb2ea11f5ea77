"""The device interface of ``joulecast measure``: a GPU meter and a time source.

Everything the measurement reads from or sets on a GPU goes through :class:`GpuMeter`, one
method per NVML call, its unit in its name (mJ, mW, MHz, °C, as NVML gives them). The NVML
implementation lives in :mod:`joulecast.measure.nvml` (pynvml imported there only); the fakes
in :mod:`joulecast.measure.fake` stand in for it in tests and demos.

Time goes through :class:`Clock`: ``now_s``, ``sleep`` and ``every`` (a periodic tick, run in a
background thread by :class:`RealClock`). A fake clock runs the ticks in step with its own time,
so a sampled timeline is deterministic in tests and nothing sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from joulecast.errors import JoulecastError


class MeasureError(JoulecastError, RuntimeError):
    """A measurement that cannot be taken (no driver, nothing readable, a failed command)."""


class NotSupportedError(MeasureError):
    """The part does not support this query or setting (NVML_ERROR_NOT_SUPPORTED)."""


class NoPermissionError(MeasureError):
    """The setting needs privileges this process lacks (NVML_ERROR_NO_PERMISSION)."""


class GpuMeter(Protocol):
    """Read and set one machine's GPUs by index (NVML's order).

    Readers raise :class:`NotSupportedError` where the part has no such sensor; setters raise
    :class:`NoPermissionError` without the privileges, :class:`NotSupportedError` where the
    part cannot be set.
    """

    def device_count(self) -> int:
        """Number of GPUs."""
        ...

    def name(self, index: int) -> str:
        """Product name, e.g. ``NVIDIA H200``."""
        ...

    def energy_mj(self, index: int) -> int:
        """Cumulative energy counter in mJ since the driver loaded (Volta and newer)."""
        ...

    def power_mw(self, index: int) -> int:
        """Board power draw in mW."""
        ...

    def sm_clock_mhz(self, index: int) -> int:
        """Current SM clock in MHz."""
        ...

    def temperature_c(self, index: int) -> int:
        """GPU temperature in °C."""
        ...

    def power_limit_mw(self, index: int) -> int:
        """Power limit in force, in mW."""
        ...

    def power_limit_range_mw(self, index: int) -> tuple[int, int]:
        """Lowest and highest power limit that can be set, in mW."""
        ...

    def set_power_limit_mw(self, index: int, limit_mw: int) -> None:
        """Set the power limit (needs root)."""
        ...

    def lock_sm_clock_mhz(self, index: int, clock_mhz: int) -> None:
        """Lock the SM clock at ``clock_mhz`` (min = max; needs root)."""
        ...

    def reset_sm_clock(self, index: int) -> None:
        """Undo :meth:`lock_sm_clock_mhz`."""
        ...

    def driver_version(self) -> str:
        """Display driver version."""
        ...

    def cuda_driver_version(self) -> str:
        """CUDA version the driver supports, e.g. ``12.4``."""
        ...

    def close(self) -> None:
        """Release the library."""
        ...


class Ticker(Protocol):
    """A running periodic tick (see :meth:`Clock.every`)."""

    def stop(self) -> None:
        """Stop ticking; no tick runs after this returns."""
        ...


class Clock(Protocol):
    """A time source: monotonic seconds, sleeping, and periodic ticks."""

    def now_s(self) -> float:
        """Monotonic time in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        ...

    def every(self, period_s: float, tick: Callable[[], None]) -> Ticker:
        """Call ``tick`` now and then every ``period_s`` until the returned ticker stops."""
        ...


class _ThreadTicker:
    def __init__(self, period_s: float, tick: Callable[[], None]) -> None:
        self._stop = threading.Event()
        self._period_s = period_s
        self._tick = tick
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="joulecast-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            next_s = time.perf_counter()
            while not self._stop.is_set():
                self._tick()
                next_s += self._period_s
                self._stop.wait(max(0.0, next_s - time.perf_counter()))
        except BaseException as exc:  # re-raised in the caller's thread by stop()
            self._error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error


class RealClock:
    """Wall time (``time.perf_counter``); ticks run in a daemon thread."""

    def now_s(self) -> float:
        """Seconds from ``time.perf_counter``."""
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)

    def every(self, period_s: float, tick: Callable[[], None]) -> Ticker:
        """Start a background thread calling ``tick`` every ``period_s``."""
        if period_s <= 0:
            raise MeasureError(f"sample period must be > 0 s, got {period_s:g}")
        return _ThreadTicker(period_s, tick)


def parse_gpu_indices(text: str) -> tuple[int, ...]:
    """``0,2-3`` -> ``(0, 2, 3)``: comma-separated NVML indices and inclusive ranges, no repeats.

    Raises:
        MeasureError: anything else (one line).
    """
    out: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise MeasureError(f"--gpus: expected indices like 0 or 0,2-3, got '{text}'")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise MeasureError(f"--gpus: range {part.strip()} runs backwards")
        out += range(first, last + 1)
    if len(set(out)) != len(out):
        raise MeasureError(f"--gpus: an index is repeated in '{text}'")
    return tuple(out)
