"""``joulecast measure kernels``: time, energy and power of single kernels, shape by shape.

Each shape of a :class:`KernelPlan` (GEMMs over M, N, K and precision, prefill and decode
attention, norms, pointwise ops) is run back to back, in batches of calls sized to about 20 ms
between synchronisations, for a window of ``window_s`` (1 s by default), and measured with
:func:`joulecast.measure.core.measure` (energy counter, or integrated power) at each chosen clock.

The rows are written by :mod:`joulecast.measure.kernel_table` in the columns of
aiconfigurator's power tables, which the kernel check reads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from joulecast.measure.core import measure
from joulecast.measure.meter import Clock, GpuMeter, MeasureError, RealClock
from joulecast.measure.settings import DeviceSettings, Provenance

GEMM, CONTEXT, GENERATION, NORM, POINTWISE = (
    "gemm",
    "context_attention",
    "generation_attention",
    "norm",
    "pointwise",
)
BATCH_TARGET_S = 0.02
MAX_BATCH_CALLS = 10_000
POINT_OVERHEAD_S = 0.3  # warm-up, batch sizing and allocation per shape (estimate)


@dataclass(frozen=True)
class KernelShape:
    """One kernel call to measure. Only the fields of its ``kind`` are set.

    Attributes:
        kind: gemm, context_attention, generation_attention, norm or pointwise.
        dtype: bf16, or fp8 for GEMMs (the call quantises its bf16 activation first).
        m, n, k: GEMM: tokens, output features, input features.
        batch, heads, kv_heads, head_dim: attention.
        length: attention: new tokens per sequence (prefill) or KV-cache length (decode).
        op: norm: rmsnorm / layernorm; pointwise: add / mul / silu / gelu.
        tokens, hidden: norm rows and width.
        elements: pointwise elements.
    """

    kind: str
    dtype: str = "bf16"
    m: int = 0
    n: int = 0
    k: int = 0
    batch: int = 0
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    length: int = 0
    op: str = ""
    tokens: int = 0
    hidden: int = 0
    elements: int = 0

    def describe(self) -> str:
        """Compact label, e.g. ``gemm bf16 128x4096x4096``."""
        if self.kind == GEMM:
            return f"gemm {self.dtype} {self.m}x{self.n}x{self.k}"
        if self.kind in (CONTEXT, GENERATION):
            return (
                f"{self.kind} b{self.batch} h{self.heads}/{self.kv_heads} d{self.head_dim} "
                f"len{self.length}"
            )
        size = f"{self.tokens}x{self.hidden}" if self.kind == NORM else str(self.elements)
        return f"{self.kind} {self.op} {size}"


@dataclass(frozen=True)
class KernelPlan:
    """Shapes to measure, at which clocks, for how long each.

    Attributes:
        shapes: the calls.
        clocks_mhz: SM clocks to lock (``None``: the driver's own clocks).
        window_s: minimum measured window per shape.
        sample_period_s: power timeline period.
    """

    shapes: tuple[KernelShape, ...]
    clocks_mhz: tuple[float | None, ...] = (None,)
    window_s: float = 1.0
    sample_period_s: float = 0.05

    @property
    def points(self) -> int:
        """Shapes times clocks."""
        return len(self.shapes) * len(self.clocks_mhz)

    @property
    def estimated_duration_s(self) -> float:
        """Expected run time: each point's window plus its overhead."""
        return self.points * (self.window_s + POINT_OVERHEAD_S)


_HEADS = ((32, 8, 128), (64, 8, 128), (32, 32, 128))


def _shapes(
    ms: Iterable[int],
    nks: Iterable[int],
    ctx: Iterable[tuple[int, int]],
    gen: Iterable[tuple[int, int]],
    heads: Sequence[tuple[int, int, int]],
    norms: Iterable[tuple[int, int]],
    elements: Iterable[int],
) -> tuple[KernelShape, ...]:
    nk = list(nks)
    out = [
        KernelShape(GEMM, dtype, m=m, n=n, k=k)
        for dtype in ("bf16", "fp8")
        for m in ms
        for n, k in itertools.product(nk, nk)
    ]
    for kind, sizes in ((CONTEXT, list(ctx)), (GENERATION, list(gen))):
        out += [
            KernelShape(kind, batch=b, heads=h, kv_heads=kv, head_dim=d, length=length)
            for h, kv, d in heads
            for b, length in sizes
        ]
    norm_sizes = list(norms)
    out += [
        KernelShape(NORM, op=op, tokens=t, hidden=w)
        for op in ("rmsnorm", "layernorm")
        for t, w in norm_sizes
    ]
    out += [
        KernelShape(POINTWISE, op=op, elements=e)
        for op in ("add", "mul", "silu", "gelu")
        for e in elements
    ]
    return tuple(out)


def default_plan(quick: bool = False, clocks_mhz: Sequence[float] = ()) -> KernelPlan:
    """The shipped plan: about 18 min on one GPU at one clock, or 2 min with ``quick``.

    Each clock in ``clocks_mhz`` (locked) repeats the plan; none: the driver's clocks.
    """
    if quick:
        shapes = _shapes(
            (1, 8, 64, 512, 4096, 16384),
            (4096, 14336),
            ((1, 1024), (8, 4096)),
            ((1, 2048), (64, 16384)),
            _HEADS[:2],
            ((16, 4096), (4096, 4096)),
            (2**16, 2**24),
        )
    else:
        shapes = _shapes(
            (1, 2, 8, 32, 128, 512, 2048, 8192, 16384),
            (1024, 2048, 4096, 8192, 14336, 28672),
            itertools.product((1, 2, 8, 32), (256, 1024, 4096, 16384)),
            itertools.product((1, 8, 32, 128), (1024, 4096, 16384, 65536)),
            _HEADS,
            itertools.product((1, 16, 256, 4096, 32768), (1024, 4096, 8192)),
            (2**12, 2**16, 2**20, 2**24, 2**28),
        )
    clocks: tuple[float | None, ...] = tuple(clocks_mhz) or (None,)
    return KernelPlan(shapes, clocks)


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.1f}" if minutes < 10 else f"{minutes:.0f}"


def plan_summary(plan: KernelPlan) -> str:
    """One line: shapes, clocks and the estimated duration."""
    return (
        f"{len(plan.shapes)} shapes x {len(plan.clocks_mhz)} clock(s), "
        f"{plan.window_s:g} s each: about {_minutes(plan.estimated_duration_s)} min"
    )


class KernelBench(Protocol):
    """Runs kernel calls on the device (PyTorch in practice, simulated in tests)."""

    def unsupported(self, shape: KernelShape) -> str | None:
        """Why ``shape`` cannot run here (``None``: it can)."""
        ...

    def prepare(self, shape: KernelShape) -> Callable[[], object]:
        """Allocate the operands and return one call (raises MeasureError when out of memory)."""
        ...

    def sync(self) -> None:
        """Wait for the device."""
        ...

    def release(self) -> None:
        """Free the operands of the last prepared shape."""
        ...

    def version(self) -> str:
        """Framework version for the provenance."""
        ...


@dataclass(frozen=True)
class KernelRow:
    """One measured shape.

    Attributes:
        latency_s: wall time per call (window / calls).
        energy_j: energy per call (the window's GPU energy / calls).
        power_w: average board power over the window.
    """

    shape: KernelShape
    calls: int
    window_s: float
    latency_s: float
    energy_j: float
    power_w: float
    power_limit_w: float | None
    sm_clock_mhz: float | None
    locked_clock_mhz: float | None
    temperature_c: float | None
    method: str


@dataclass(frozen=True)
class Collection:
    """Rows measured, shapes skipped (with the reason) and notes."""

    rows: tuple[KernelRow, ...]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    provenance: Provenance | None


def _batch_calls(call: Callable[[], object], bench: KernelBench, clock: Clock) -> int:
    call()
    bench.sync()
    t0 = clock.now_s()
    call()
    bench.sync()
    dt = clock.now_s() - t0
    if not dt > 0:
        return MAX_BATCH_CALLS
    return max(1, min(MAX_BATCH_CALLS, math.ceil(BATCH_TARGET_S / dt)))


def collect(
    plan: KernelPlan,
    bench: KernelBench,
    meter: GpuMeter,
    *,
    gpu: int = 0,
    clock: Clock | None = None,
    power_limit_w: float | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Collection:
    """Measure every shape of ``plan`` at each of its clocks on GPU ``gpu``."""
    clock = clock or RealClock()
    rows: list[KernelRow] = []
    skipped: list[str] = []
    notes: list[str] = []
    provenance: Provenance | None = None
    done = 0
    for target in plan.clocks_mhz:
        device = DeviceSettings(meter, (gpu,), target, power_limit_w)
        settings = device.apply()
        notes += settings.notes
        locked = target if settings.sm_clock_locked else None
        try:
            for shape in plan.shapes:
                done += 1
                if progress is not None:
                    progress(done, plan.points, shape.describe())
                why = bench.unsupported(shape)
                if why is not None:
                    skipped.append(f"{shape.describe()}: {why}")
                    continue
                try:
                    call = bench.prepare(shape)
                except MeasureError as exc:
                    skipped.append(f"{shape.describe()}: {exc}")
                    continue
                try:
                    batch = _batch_calls(call, bench, clock)

                    def work(call: Callable[[], object] = call, batch: int = batch) -> None:
                        for _ in range(batch):
                            call()

                    m = measure(
                        work,
                        meter,
                        gpus=(gpu,),
                        clock=clock,
                        warmup=0,
                        min_window_s=plan.window_s,
                        sample_period_s=plan.sample_period_s,
                        sync=bench.sync,
                    )
                finally:
                    bench.release()
                provenance = provenance or replace(m.provenance, torch=bench.version())
                g, calls = m.gpus[0], m.iterations * batch
                notes += [n for n in m.notes if n not in notes]
                rows.append(
                    KernelRow(
                        shape=shape,
                        calls=calls,
                        window_s=m.window_s,
                        latency_s=m.window_s / calls,
                        energy_j=g.energy_j / calls,
                        power_w=g.avg_power_w,
                        power_limit_w=settings.power_limit_w,
                        sm_clock_mhz=g.avg_sm_clock_mhz,
                        locked_clock_mhz=locked,
                        temperature_c=g.avg_temperature_c,
                        method=g.method,
                    )
                )
        finally:
            notes += device.restore()
    return Collection(tuple(rows), tuple(skipped), tuple(notes), provenance)
