"""Measure time, energy and average power of repeated work on each GPU.

The protocol (docs/measure.md): lock the clock and set the power limit where permitted; run
``warmup`` untimed iterations; start the background sampler; read every GPU's cumulative energy
counter; run the work back to back (synchronising after each iteration) until the window is at
least ``min_window_s``; read the counters again; stop the sampler; restore the settings.

Energy per GPU is the counter's difference (``method = "energy counter"``). Where the part has
no counter (``NVMLError_NotSupported``), or the counter did not advance, the sampled power is
integrated over the window instead (``method = "integrated power"``) and a note says so. Where
neither can be read the measurement fails: it never reports 0 J.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from joulecast.measure.meter import (
    Clock,
    GpuMeter,
    MeasureError,
    NotSupportedError,
    RealClock,
)
from joulecast.measure.sampler import Sampler, Timeline
from joulecast.measure.settings import DeviceSettings, Provenance, Settings, collect_provenance

COUNTER = "energy counter"
INTEGRATED = "integrated power"


@dataclass(frozen=True)
class GpuResult:
    """One GPU over the measured window.

    Attributes:
        index: NVML index.
        name: product name.
        energy_j: energy over the whole window.
        avg_power_w: ``energy_j / window``.
        method: ``"energy counter"`` or ``"integrated power"``.
        avg_sm_clock_mhz: mean sampled SM clock (``None``: not readable).
        avg_temperature_c: mean sampled temperature (``None``: not readable).
        max_temperature_c: hottest sample (``None``: not readable).
        samples: timeline samples spanning the window.
    """

    index: int
    name: str
    energy_j: float
    avg_power_w: float
    method: str
    avg_sm_clock_mhz: float | None
    avg_temperature_c: float | None
    max_temperature_c: float | None
    samples: int


@dataclass(frozen=True)
class Measurement:
    """Result of :func:`measure`: the window, each GPU's energy, settings and provenance.

    Attributes:
        window_s: length of the timed window.
        iterations: iterations of the work inside it.
        start_s: window start on the clock the timelines use.
        gpus: one result per measured GPU.
        settings: clocks and limits in force, and what was refused.
        provenance: date, driver, CUDA and torch versions.
        timelines: the sampled power, clock and temperature of each GPU (window and margins).
        notes: fallbacks and refusals, one line each.
    """

    window_s: float
    iterations: int
    start_s: float
    gpus: tuple[GpuResult, ...]
    settings: Settings
    provenance: Provenance
    timelines: tuple[Timeline, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the timelines are left out: see ``--plot``)."""
        return {
            "window_s": self.window_s,
            "iterations": self.iterations,
            "time_per_iteration_s": self.time_per_iteration_s,
            "energy_j": self.energy_j,
            "energy_per_iteration_j": self.energy_per_iteration_j,
            "avg_power_w": self.avg_power_w,
            "gpus": [asdict(g) for g in self.gpus],
            "settings": {**asdict(self.settings), "notes": list(self.settings.notes)},
            "provenance": self.provenance.as_dict(),
            "notes": list(self.notes),
        }

    @property
    def time_per_iteration_s(self) -> float:
        """Window divided by iterations."""
        return self.window_s / self.iterations

    @property
    def energy_j(self) -> float:
        """Energy of all measured GPUs over the window."""
        return sum(g.energy_j for g in self.gpus)

    @property
    def energy_per_iteration_j(self) -> float:
        """All GPUs' energy per iteration."""
        return self.energy_j / self.iterations

    @property
    def avg_power_w(self) -> float:
        """All GPUs' average power over the window."""
        return self.energy_j / self.window_s


def _read_counters(meter: GpuMeter, gpus: Sequence[int]) -> list[int | None]:
    out: list[int | None] = []
    for g in gpus:
        try:
            out.append(meter.energy_mj(g))
        except NotSupportedError:
            out.append(None)
    return out


def _gpu_result(
    meter: GpuMeter,
    tl: Timeline,
    start_mj: int | None,
    end_mj: int | None,
    t0: float,
    t1: float,
    notes: list[str],
) -> GpuResult:
    g = tl.gpu
    if start_mj is not None and end_mj is not None and end_mj > start_mj:
        energy_j, method = (end_mj - start_mj) / 1e3, COUNTER
    else:
        why = (
            "no energy counter"
            if start_mj is None or end_mj is None
            else (f"energy counter did not advance ({start_mj} -> {end_mj} mJ)")
        )
        energy_j, method = tl.energy_j(t0, t1), INTEGRATED
        notes.append(f"GPU {g}: {why}; energy integrated from sampled power")
        if not energy_j > 0:
            raise MeasureError(
                f"GPU {g}: {why}, and the sampled power integrates to {energy_j:g} J: "
                "no energy could be read"
            )
    return GpuResult(
        index=g,
        name=meter.name(g),
        energy_j=energy_j,
        avg_power_w=energy_j / (t1 - t0),
        method=method,
        avg_sm_clock_mhz=tl.mean(tl.sm_clock_mhz, t0, t1),
        avg_temperature_c=tl.mean(tl.temperature_c, t0, t1),
        max_temperature_c=tl.maximum(tl.temperature_c, t0, t1),
        samples=int(tl.covering(t0, t1).sum()),
    )


def _check(warmup: int, min_window_s: float, min_iterations: int) -> None:
    if warmup < 0:
        raise MeasureError(f"warm-up iterations must be >= 0, got {warmup}")
    if not min_window_s > 0:
        raise MeasureError(f"the minimum window must be > 0 s, got {min_window_s:g}")
    if min_iterations < 1:
        raise MeasureError(f"at least one iteration is needed, got {min_iterations}")


def measure(
    work: Callable[[], object],
    meter: GpuMeter,
    *,
    gpus: Sequence[int] | None = None,
    clock: Clock | None = None,
    warmup: int = 1,
    min_window_s: float = 5.0,
    min_iterations: int = 1,
    sample_period_s: float = 0.1,
    sync: Callable[[], object] | None = None,
    sm_clock_mhz: float | None = None,
    power_limit_w: float | None = None,
) -> Measurement:
    """Run ``work`` until the window reaches ``min_window_s`` and measure every GPU.

    Args:
        work: one iteration (a forward pass, a batch of kernel calls, a command).
        meter: the GPUs (:class:`~joulecast.measure.nvml.NvmlMeter` or a fake).
        gpus: NVML indices to measure (default: all).
        clock: time source (default: wall time, sampler in a background thread).
        warmup: untimed iterations first.
        min_window_s: keep iterating until the window is at least this long.
        min_iterations: and at least this many iterations.
        sample_period_s: timeline sample period.
        sync: called after each iteration (e.g. ``torch.cuda.synchronize``).
        sm_clock_mhz: lock the SM clock here (reported, not fatal, when refused).
        power_limit_w: set this power limit (reported, not fatal, when refused).

    Raises:
        MeasureError: no GPU, bad arguments, or no energy readable on a GPU.
        ClockError: a power limit outside the part's range.
    """
    _check(warmup, min_window_s, min_iterations)
    clock = clock or RealClock()
    count = meter.device_count()
    chosen = tuple(range(count)) if gpus is None else tuple(gpus)
    if not chosen:
        raise MeasureError("no GPU to measure")
    bad = [g for g in chosen if not 0 <= g < count]
    if bad:
        raise MeasureError(f"no GPU {bad[0]} (this machine has {count})")

    def step() -> None:
        work()
        if sync is not None:
            sync()

    device = DeviceSettings(meter, chosen, sm_clock_mhz, power_limit_w)
    settings = device.apply()
    try:
        for _ in range(warmup):
            step()
        sampler = Sampler(meter, chosen, clock, sample_period_s)
        sampler.start()
        try:
            start_mj = _read_counters(meter, chosen)
            t0 = clock.now_s()
            iterations = 0
            while iterations < min_iterations or clock.now_s() - t0 < min_window_s:
                step()
                iterations += 1
            t1 = clock.now_s()
            end_mj = _read_counters(meter, chosen)
        finally:
            timelines = sampler.stop()
    finally:
        restore_notes = device.restore()
    notes = [*settings.notes]
    results = tuple(
        _gpu_result(meter, tl, s, e, t0, t1, notes)
        for tl, s, e in zip(timelines, start_mj, end_mj, strict=True)
    )
    return Measurement(
        window_s=t1 - t0,
        iterations=iterations,
        start_s=t0,
        gpus=results,
        settings=settings,
        provenance=collect_provenance(meter, chosen),
        timelines=timelines,
        notes=(*notes, *restore_notes),
    )


def command_work(argv: Sequence[str]) -> Callable[[], None]:
    """One run of the command ``argv`` as a unit of work (a failed run is an error).

    Raises:
        MeasureError: empty command (at call time: not found, or a non-zero exit status).
    """
    args = list(argv)
    if not args:
        raise MeasureError("no command to measure: give it after --, e.g. -- python train.py")

    def run() -> None:
        try:
            rc = subprocess.run(args, check=False).returncode
        except FileNotFoundError:
            raise MeasureError(f"command not found: {args[0]}") from None
        if rc != 0:
            raise MeasureError(f"the command exited with status {rc}: {' '.join(args)}")

    return run
