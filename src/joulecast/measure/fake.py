"""Stand-ins for a GPU and for time: tests, demos and ``joulecast measure --fake``.

* :class:`FakeClock`: time moves only when told (``sleep``/``advance``); periodic ticks run in
  step with it, so a sampled timeline is exact and nothing waits.
* :class:`SimulatedMeter`: GPUs whose power follows a known piecewise-linear profile over the
  clock's time; the energy counter is that profile's exact integral (``energy_counter=False``:
  a part without one; ``permitted=False``: a part that refuses clock locking and power limits).
* :class:`ReplayMeter`: GPUs replaying a recorded trace (:func:`read_trace`), each reading the
  last sample at or before the clock's time, as NVML holds a value until it refreshes.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from joulecast.measure.kernels import KernelShape
from joulecast.measure.meter import (
    Clock,
    MeasureError,
    NoPermissionError,
    NotSupportedError,
    Ticker,
)


class _FakeTicker:
    def __init__(self, clock: FakeClock, period_s: float, tick: Callable[[], None]) -> None:
        self.period_s, self.tick, self.next_s = period_s, tick, clock.now_s()
        self._clock = clock

    def stop(self) -> None:
        self._clock._tickers.remove(self)


class FakeClock:
    """A clock whose time moves only when told; ticks fire at their exact times."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = start_s
        self._tickers: list[_FakeTicker] = []

    def now_s(self) -> float:
        """Current fake time."""
        return self._now_s

    def sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` (ticks in between run at their own times)."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward, running every tick that falls due on the way."""
        if seconds < 0:
            raise ValueError("a fake clock cannot go back")
        end_s = self._now_s + seconds
        while self._tickers:
            due = min(self._tickers, key=lambda t: t.next_s)
            if due.next_s > end_s:
                break
            self._now_s = max(self._now_s, due.next_s)
            due.next_s += due.period_s
            due.tick()
        self._now_s = end_s

    def every(self, period_s: float, tick: Callable[[], None]) -> Ticker:
        """Tick now, then every ``period_s`` of fake time."""
        if period_s <= 0:
            raise MeasureError(f"sample period must be > 0 s, got {period_s:g}")
        ticker = _FakeTicker(self, period_s, tick)
        self._tickers.append(ticker)
        ticker.next_s += period_s
        tick()
        return ticker


@dataclass
class _Profile:
    """Piecewise-linear power in W over time in s, constant beyond the knots."""

    time_s: list[float]
    power_w: list[float]

    def at(self, t: float) -> float:
        ts, ps = self.time_s, self.power_w
        if t <= ts[0]:
            return ps[0]
        if t >= ts[-1]:
            return ps[-1]
        i = bisect.bisect_right(ts, t) - 1
        f = (t - ts[i]) / (ts[i + 1] - ts[i])
        return ps[i] + f * (ps[i + 1] - ps[i])

    def integral_j(self, t: float) -> float:
        """Exact energy from the first knot to ``t``."""
        ts, total = self.time_s, 0.0
        for i in range(len(ts) - 1):
            if t <= ts[i]:
                break
            hi = min(t, ts[i + 1])
            total += (hi - ts[i]) * (self.power_w[i] + self.at(hi)) / 2.0
        if t > ts[-1]:
            total += (t - ts[-1]) * self.power_w[-1]
        return total

    def set(self, t: float, power_w: float) -> None:
        """From ``t`` on, draw ``power_w`` (a step; knots at or after ``t`` are replaced)."""
        before = self.at(t)
        keep = [i for i, ti in enumerate(self.time_s) if ti < t]
        self.time_s = [self.time_s[i] for i in keep] + [t, math.nextafter(t, math.inf)]
        self.power_w = [self.power_w[i] for i in keep] + [before, power_w]


class SimulatedMeter:
    """Simulated GPUs with a known power profile (see the module doc).

    Args:
        clock: the time the profile is read against.
        power_w: per GPU, ``(time_s, power_w)`` knots (linear in between, held outside).
        gpu_name: product name of every GPU.
        energy_counter: whether the part has the cumulative energy counter.
        permitted: whether clock locking and power limits are allowed (root).
        clock_mhz: SM clock when unlocked; a lock moves it to the locked value.
        temp_c: constant temperature.
        power_limit_w: default limit.
        power_limit_range_w: the settable range.
    """

    def __init__(
        self,
        clock: Clock,
        power_w: Sequence[tuple[Sequence[float], Sequence[float]]] = (([0.0], [300.0]),),
        *,
        gpu_name: str = "Simulated GPU",
        energy_counter: bool = True,
        permitted: bool = True,
        clock_mhz: float = 1410.0,
        temp_c: float = 55.0,
        power_limit_w: float = 400.0,
        power_limit_range_w: tuple[float, float] = (100.0, 400.0),
    ) -> None:
        self.clock, self.gpu_name = clock, gpu_name
        self.energy_counter, self.permitted = energy_counter, permitted
        self.clock_mhz, self.temp_c = clock_mhz, temp_c
        self.power_limit_range_w = power_limit_range_w
        self.locked_mhz: dict[int, int] = {}
        self.calls: list[str] = []
        self._profiles = [_Profile(list(t), list(p)) for t, p in power_w]
        self._limits_mw = [round(power_limit_w * 1e3)] * len(self._profiles)

    def set_power_w(self, index: int, power_w: float) -> None:
        """From now on GPU ``index`` draws ``power_w`` (a step in its profile)."""
        self._profiles[index].set(self.clock.now_s(), power_w)

    def device_count(self) -> int:
        """Number of simulated GPUs."""
        return len(self._profiles)

    def name(self, index: int) -> str:
        """The configured name."""
        return self.gpu_name

    def energy_mj(self, index: int) -> int:
        """Exact integral of the profile up to now, in whole mJ (NVML's resolution)."""
        if not self.energy_counter:
            raise NotSupportedError("read the energy counter: not supported")
        return math.floor(self._profiles[index].integral_j(self.clock.now_s()) * 1e3)

    def power_mw(self, index: int) -> int:
        """The profile now."""
        return round(self._profiles[index].at(self.clock.now_s()) * 1e3)

    def sm_clock_mhz(self, index: int) -> int:
        """Locked clock, or the configured one."""
        return self.locked_mhz.get(index, round(self.clock_mhz))

    def temperature_c(self, index: int) -> int:
        """The configured temperature."""
        return round(self.temp_c)

    def power_limit_mw(self, index: int) -> int:
        """The limit in force."""
        return self._limits_mw[index]

    def power_limit_range_mw(self, index: int) -> tuple[int, int]:
        """The configured range."""
        lo, hi = self.power_limit_range_w
        return round(lo * 1e3), round(hi * 1e3)

    def _permit(self, what: str) -> None:
        self.calls.append(what)
        if not self.permitted:
            raise NoPermissionError(f"{what}: no permission")

    def set_power_limit_mw(self, index: int, limit_mw: int) -> None:
        """Set the limit (refused when not permitted)."""
        self._permit(f"set_power_limit {index} {limit_mw}")
        self._limits_mw[index] = limit_mw

    def lock_sm_clock_mhz(self, index: int, clock_mhz: int) -> None:
        """Lock (refused when not permitted)."""
        self._permit(f"lock {index} {clock_mhz}")
        self.locked_mhz[index] = clock_mhz

    def reset_sm_clock(self, index: int) -> None:
        """Unlock."""
        self.calls.append(f"reset {index}")
        self.locked_mhz.pop(index, None)

    def driver_version(self) -> str:
        """The configured driver string."""
        return "0.0-simulated"

    def cuda_driver_version(self) -> str:
        """A fixed CUDA version."""
        return "12.4"

    def close(self) -> None:
        """Nothing to release."""


FAKES = ("counter", "no-counter", "no-permission")


def demo_meter(kind: str, clock: Clock, gpu_name: str) -> SimulatedMeter:
    """The simulated GPU of ``--fake KIND``: a 700 W part whose power ramps from 120 W to 280 W
    over 2 s; ``no-counter`` has no energy counter, ``no-permission`` refuses clocks and limits.

    Raises:
        MeasureError: an unknown kind.
    """
    if kind not in FAKES:
        raise MeasureError(f"--fake takes {', '.join(FAKES)}, not '{kind}'")
    now = clock.now_s()
    return SimulatedMeter(
        clock,
        [([now, now + 2.0], [120.0, 280.0])],
        gpu_name=gpu_name,
        energy_counter=kind != "no-counter",
        permitted=kind != "no-permission",
        power_limit_range_w=(200.0, 700.0),
        power_limit_w=700.0,
    )


TRACE_COLUMNS = ("time_s", "gpu", "power_w", "energy_mj", "sm_clock_mhz", "temperature_c")


@dataclass(frozen=True)
class TraceSample:
    """One recorded reading of one GPU; ``None`` where the part had no such reading."""

    time_s: float
    gpu: int
    power_w: float | None
    energy_mj: int | None
    sm_clock_mhz: float | None
    temperature_c: float | None


def _num(text: str, column: str, line: int) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise MeasureError(f"trace line {line}: {column} is not a number: '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise MeasureError(f"trace line {line}: {column} must be finite and >= 0, got {text}")
    return value


def parse_trace(text: str) -> tuple[TraceSample, ...]:
    """Parse a recorded trace (CSV with :data:`TRACE_COLUMNS`; empty cell = not readable).

    Raises:
        MeasureError: a missing column, a bad number, or times that go back for one GPU.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise MeasureError(f"trace: missing column(s) {', '.join(missing)}")
    out: list[TraceSample] = []
    last: dict[int, float] = {}
    for line, rec in enumerate(reader, start=2):
        t = _num(rec["time_s"] or "", "time_s", line)
        gpu = _num(rec["gpu"] or "", "gpu", line)
        if t is None or gpu is None or gpu != int(gpu):
            raise MeasureError(f"trace line {line}: time_s and an integer gpu are required")
        if t < last.get(int(gpu), -math.inf):
            raise MeasureError(f"trace line {line}: time goes back for GPU {int(gpu)}")
        last[int(gpu)] = t
        energy = _num(rec["energy_mj"] or "", "energy_mj", line)
        out.append(
            TraceSample(
                time_s=t,
                gpu=int(gpu),
                power_w=_num(rec["power_w"] or "", "power_w", line),
                energy_mj=None if energy is None else int(energy),
                sm_clock_mhz=_num(rec["sm_clock_mhz"] or "", "sm_clock_mhz", line),
                temperature_c=_num(rec["temperature_c"] or "", "temperature_c", line),
            )
        )
    if not out:
        raise MeasureError("trace: no samples")
    return tuple(out)


def format_trace(samples: Sequence[TraceSample]) -> str:
    """The CSV text :func:`parse_trace` reads."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TRACE_COLUMNS)
    for s in samples:
        w.writerow(
            ["" if v is None else repr(v) for v in (s.time_s, s.gpu, s.power_w)]
            + ["" if s.energy_mj is None else str(s.energy_mj)]
            + ["" if v is None else repr(v) for v in (s.sm_clock_mhz, s.temperature_c)]
        )
    return buf.getvalue()


def read_trace(path: Path) -> tuple[TraceSample, ...]:
    """:func:`parse_trace` of a file."""
    return parse_trace(path.read_text(encoding="utf-8"))


class ReplayMeter(SimulatedMeter):
    """GPUs replaying recorded samples (sample-and-hold at the clock's time)."""

    def __init__(
        self, clock: Clock, samples: Sequence[TraceSample], name: str = "Replayed GPU"
    ) -> None:
        by_gpu: dict[int, list[TraceSample]] = {}
        for s in samples:
            by_gpu.setdefault(s.gpu, []).append(s)
        if sorted(by_gpu) != list(range(len(by_gpu))):
            raise MeasureError(f"trace: GPUs must be numbered 0..n-1, got {sorted(by_gpu)}")
        super().__init__(clock, [([0.0], [0.0])] * len(by_gpu), gpu_name=name)
        self._trace: Mapping[int, list[TraceSample]] = by_gpu
        self._times = {g: [s.time_s for s in ss] for g, ss in by_gpu.items()}

    def _at(self, index: int) -> TraceSample:
        i = bisect.bisect_right(self._times[index], self.clock.now_s()) - 1
        return self._trace[index][max(i, 0)]

    @staticmethod
    def _need(value: float | None, what: str) -> float:
        if value is None:
            raise NotSupportedError(f"read {what}: not supported")
        return value

    def energy_mj(self, index: int) -> int:
        """The recorded counter at the current time."""
        return int(self._need(self._at(index).energy_mj, "the energy counter"))

    def power_mw(self, index: int) -> int:
        """The recorded power at the current time."""
        return round(self._need(self._at(index).power_w, "power") * 1e3)

    def sm_clock_mhz(self, index: int) -> int:
        """The recorded clock at the current time."""
        return round(self._need(self._at(index).sm_clock_mhz, "the SM clock"))

    def temperature_c(self, index: int) -> int:
        """The recorded temperature at the current time."""
        return round(self._need(self._at(index).temperature_c, "temperature"))


class SimulatedKernelBench:
    """Kernel calls on a :class:`SimulatedMeter` and :class:`FakeClock`: each call lasts
    :meth:`latency_s` and the GPU draws :meth:`power_w` while the shape runs."""

    def __init__(self, clock: FakeClock, meter: SimulatedMeter, gpu: int = 0) -> None:
        self._clock, self._meter, self._gpu = clock, meter, gpu

    @staticmethod
    def latency_s(shape: KernelShape) -> float:
        """A made-up but deterministic time per call: 5 us plus work at 400 TFLOP/s."""
        work = (
            2 * shape.m * shape.n * shape.k
            + 4 * shape.batch * shape.heads * shape.head_dim * shape.length
            + 8 * (shape.tokens * shape.hidden + shape.elements)
        )
        return 5e-6 + work / 4e14

    @staticmethod
    def power_w(shape: KernelShape) -> float:
        """A made-up, deterministic power: 90 W idle plus up to 500 W with the call's length."""
        lat = SimulatedKernelBench.latency_s(shape)
        return 90.0 + 500.0 * lat / (lat + 1e-3)

    def unsupported(self, shape: KernelShape) -> str | None:
        """Everything runs except fp8 attention (none is planned)."""
        return None

    def prepare(self, shape: KernelShape) -> Callable[[], object]:
        """Start drawing the shape's power; each call advances the clock by its latency."""
        self._meter.set_power_w(self._gpu, self.power_w(shape))
        lat = self.latency_s(shape)
        return lambda: self._clock.advance(lat)

    def sync(self) -> None:
        """Nothing to wait for."""

    def release(self) -> None:
        """Back to idle power."""
        self._meter.set_power_w(self._gpu, 90.0)

    def version(self) -> str:
        """No framework."""
        return "simulated"
