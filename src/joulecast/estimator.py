"""The estimate: a workload on a GPU at a clock and power cap -> time, power, energy, breakdown."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from joulecast.coefficients import GpuCoefficients, coefficients_for
from joulecast.coefficients.host import Host, default_host_id, load_host, resolve_host
from joulecast.dvfs import DvfsCurve, dvfs_curve, regulated_power_w
from joulecast.errors import ClockError
from joulecast.hardware.spec import GPUSpec, resolve_gpu
from joulecast.power import coefficient_vector, event_matrix
from joulecast.timeline import CompiledWorkload, compile_workload, kernel_times, pass_times
from joulecast.workload.ir import Attention, Conv2d, Elementwise, Gemm, Precision, Workload

TOP_KERNELS = 10


@dataclass(frozen=True)
class ClassBreakdown:
    """Time and energy of one op class within a pass."""

    op_class: str
    launches: int
    time_ms: float
    energy_j: float
    share_of_time: float


@dataclass(frozen=True)
class KernelRow:
    """One unique kernel shape and its totals over the pass."""

    kernel: str
    op_class: str
    launches: int
    time_ms: float
    energy_j: float
    bound: str


@dataclass(frozen=True)
class Estimate:
    """Result of one estimate (per forward pass, or per decode step).

    Attributes:
        time_s: synchronised wall time of the pass, host overhead and launch gaps included.
        energy_j: board energy of the pass (idle power during gaps included).
        avg_power_w: ``energy_j / time_s``.
        sm_clock_mhz: SM clock the pass runs at (below the requested clock when throttled).
        activity: average utilisation fractions over the pass (tensor, dram, sm, fp32, ...).
        coefficients: where the GPU's coefficients come from (fitted, or transferred by physics).
        host: id of the host that issued the pass.
    """

    workload: str
    gpu: str
    time_s: float
    energy_j: float
    avg_power_w: float
    sm_clock_mhz: float
    requested_clock_mhz: float
    power_cap_w: float
    throttled: bool
    gpu_busy_s: float
    idle_power_w: float
    kernels: int
    flops: float
    dram_bytes: float
    activity: dict[str, float]
    breakdown: tuple[ClassBreakdown, ...] = field(default_factory=tuple)
    top_kernels: tuple[KernelRow, ...] = field(default_factory=tuple)
    coefficients: str = ""
    host: str = ""
    tokens: int | None = None

    @property
    def time_ms(self) -> float:
        return self.time_s * 1e3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CLI's ``--format json``)."""
        return {
            "workload": self.workload,
            "gpu": self.gpu,
            "time_ms": self.time_ms,
            "energy_j": self.energy_j,
            "avg_power_w": self.avg_power_w,
            "sm_clock_mhz": self.sm_clock_mhz,
            "requested_clock_mhz": self.requested_clock_mhz,
            "power_cap_w": self.power_cap_w,
            "throttled": self.throttled,
            "gpu_busy_ms": self.gpu_busy_s * 1e3,
            "idle_gap_ms": (self.time_s - self.gpu_busy_s) * 1e3,
            "idle_power_w": self.idle_power_w,
            "kernels": self.kernels,
            "tflop": self.flops / 1e12,
            "dram_gb": self.dram_bytes / 1e9,
            "activity": self.activity,
            "breakdown": [asdict(b) for b in self.breakdown],
            "top_kernels": [asdict(k) for k in self.top_kernels],
            "coefficients": self.coefficients,
            "host": self.host,
            "tokens": self.tokens,
            "energy_per_token_j": self.energy_per_token_j,
            "tokens_per_s": self.tokens_per_s,
        }

    @property
    def energy_per_token_j(self) -> float | None:
        """Board energy per processed token (language-model passes only)."""
        return self.energy_j / self.tokens if self.tokens else None

    @property
    def tokens_per_s(self) -> float | None:
        """Tokens processed per second of pass time (language-model passes only)."""
        return self.tokens / self.time_s if self.tokens else None


@dataclass(frozen=True)
class Evaluation:
    """Vectorised evaluation of one compiled workload over several clocks."""

    clock_mhz: NDArray[np.float64]
    time_s: NDArray[np.float64]
    energy_j: NDArray[np.float64]
    gpu_busy_s: NDArray[np.float64]
    idle_w: NDArray[np.float64]
    t_unique: NDArray[np.float64]
    e_unique: NDArray[np.float64]

    @property
    def power_w(self) -> NDArray[np.float64]:
        return self.energy_j / self.time_s


def _priced(events: NDArray[np.float64], coeff: NDArray[np.float64]) -> NDArray[np.float64]:
    """``events @ coeff`` summed in a fixed order (BLAS would change the last bits with the
    number of clocks evaluated together)."""
    out = events[..., 0] * coeff[0]
    for j in range(1, coeff.size):
        out = out + events[..., j] * coeff[j]
    return np.asarray(out, dtype=np.float64)


def evaluate(
    cw: CompiledWorkload,
    coeffs: GpuCoefficients,
    clock_mhz: NDArray[np.float64],
    curve: DvfsCurve | None = None,
    host: Host | None = None,
) -> Evaluation:
    """Time and energy of the pass at each clock in ``clock_mhz`` (vectorised), issued by
    ``host`` (default: the part's default host)."""
    curve = curve or dvfs_curve(cw.gpu)
    host = host or host_for(cw.gpu)
    t_u = kernel_times(cw, coeffs.time, clock_mhz)
    pt = pass_times(cw, host, t_u)
    v2 = curve.v2_ratio(clock_mhz, coeffs.ref_clock_mhz)
    e_u = _priced(event_matrix(cw, t_u, clock_mhz, v2), coefficient_vector(coeffs.power))
    idle = curve.idle_power(clock_mhz) + coeffs.power.idle_offset_w
    # Summed along contiguous rows, one per clock: the result at a clock does not depend on
    # which other clocks were evaluated with it.
    per_clock = np.ascontiguousarray((cw.count[:, None] * e_u).T).sum(axis=1)
    energy = idle * pt.time_s + per_clock
    return Evaluation(clock_mhz, pt.time_s, energy, pt.gpu_busy_s, idle, t_u, e_u)


def _describe(op: object) -> str:
    """Compact human-readable shape of an op, e.g. ``gemm 1024x4096x1024 bf16``."""
    kind = str(getattr(op, "kind", "op"))
    prec = str(getattr(op, "precision", ""))
    if isinstance(op, Gemm):
        batch = f"{op.batch}x " if op.batch > 1 else ""
        pipe = "" if op.tensor_core else " cuda-core"
        return f"gemm {batch}{op.m}x{op.n}x{op.k} {prec}{pipe}"
    if isinstance(op, Conv2d):
        return (
            f"conv2d b{op.batch} {op.in_channels}->{op.out_channels} {op.height}x{op.width} "
            f"k{op.kernel}s{op.stride} {prec}"
        )
    if isinstance(op, Attention):
        return (
            f"attention b{op.batch} h{op.heads}/{op.n_kv_heads} q{op.seq_q} kv{op.seq_kv} "
            f"d{op.head_dim} {prec}{' causal' if op.causal else ''}"
        )
    if isinstance(op, Elementwise):
        return f"{op.op} {op.elements} {prec}"
    rows, cols = getattr(op, "rows", None), getattr(op, "cols", None)
    if rows is not None and cols is not None:
        return f"{kind} {rows}x{cols} {prec}"
    size = getattr(op, "elements", None) or getattr(op, "width", "")
    return f"{kind} {size} {prec}"


def host_for(gpu: GPUSpec) -> Host:
    """The host ``gpu`` is assumed to sit in when none is given (its measurement machine for a
    calibrated part; see ``coefficients/data/hosts/defaults.yaml``)."""
    return load_host(default_host_id(gpu.id, gpu.form_factor))


def estimate(
    workload: Workload,
    gpu: str | GPUSpec,
    *,
    sm_clock_mhz: float | None = None,
    power_cap_w: float | None = None,
    coefficients: GpuCoefficients | None = None,
    host: str | Host | None = None,
    cuda_graphs: bool = False,
    detail: bool = True,
) -> Estimate:
    """Estimate time, power and energy of one pass of ``workload`` on ``gpu``.

    Args:
        workload: the kernel launches of one pass.
        gpu: a shipped GPU id, a spec file path, or a :class:`GPUSpec`.
        sm_clock_mhz: locked SM clock; default is the part's maximum (boost) clock.
        power_cap_w: board power limit; default is the part's default limit. When the pass would
            draw more, the clock is lowered to the highest supported clock that fits the cap.
        coefficients: calibrated coefficients; default: shipped or transferred ones.
        host: the machine issuing the kernels: a :class:`Host`, a shipped host id or a host
            file (``joulecast host fit``); default: the part's default host.
        cuda_graphs: the pass is replayed as a CUDA graph (serving engines' decode): no host
            dispatch time per op. Default: eager PyTorch, as the calibration runs were.
        detail: compute the per-class breakdown and top kernels.

    Raises:
        ClockError: clock outside the part's range, or a power cap outside [idle, max limit].
    """
    spec = resolve_gpu(gpu)
    requested = spec.check_clock(sm_clock_mhz if sm_clock_mhz is not None else spec.max_clock_mhz)
    coeffs = coefficients or coefficients_for(spec)
    machine = resolve_host(host) if host is not None else host_for(spec)
    if cuda_graphs:
        machine = machine.with_cuda_graphs()
    curve = dvfs_curve(spec)
    cap = power_cap_w if power_cap_w is not None else spec.default_power_limit_w
    idle_at_clock = float(curve.idle_power(requested)) + coeffs.power.idle_offset_w
    spec.check_power_cap(cap, min(idle_at_clock, float(curve.idle_power(spec.min_clock_mhz))))
    cw = compile_workload(workload, spec)

    # Only the requested clock is evaluated; clocks below it only when the cap binds there.
    limit_w = regulated_power_w(cap)
    ev = evaluate(cw, coeffs, np.array([requested]), curve, machine)
    throttled = not bool(ev.power_w[0] <= limit_w)
    idx = 0
    if throttled:
        ev, idx = _highest_fitting_clock(cw, coeffs, curve, machine, requested, limit_w, ev)
        if idx < 0:
            raise ClockError(
                f"power cap {cap:g} W is below what this workload draws on {spec.id} even at the "
                f"lowest clock ({float(ev.power_w[0]):.0f} W)"
            )
    return _build(workload, spec, cw, coeffs, machine, ev, idx, requested, cap, throttled, detail)


# Supported clocks evaluated together while looking for the highest one under a binding cap.
CLOCK_CHUNK = 8


def _highest_fitting_clock(
    cw: CompiledWorkload,
    coeffs: GpuCoefficients,
    curve: DvfsCurve,
    host: Host,
    requested: float,
    limit_w: float,
    at_requested: Evaluation,
) -> tuple[Evaluation, int]:
    """The highest supported clock below ``requested`` whose power fits ``limit_w``.

    Clocks are evaluated in chunks from the top down, and the search stops at the first chunk
    holding a fitting clock: the same clock a scan of the whole grid picks (no monotonicity is
    assumed), usually after one chunk. Returns the last evaluation and the index in it, or
    ``-1`` with the lowest clocks' evaluation when none fits.
    """
    below = [c for c in cw.gpu.supported_clocks_mhz() if c < requested]
    ev, hi = at_requested, len(below)
    while hi > 0:
        lo = max(0, hi - CLOCK_CHUNK)
        ev = evaluate(cw, coeffs, np.array(below[lo:hi]), curve, host)
        fits = np.flatnonzero(ev.power_w <= limit_w)
        if fits.size:
            return ev, int(fits[-1])
        hi = lo
    return ev, -1


def _build(
    workload: Workload,
    spec: GPUSpec,
    cw: CompiledWorkload,
    coeffs: GpuCoefficients,
    host: Host,
    ev: Evaluation,
    idx: int,
    requested: float,
    cap: float,
    throttled: bool,
    detail: bool,
) -> Estimate:
    f = float(ev.clock_mhz[idx])
    time_s = float(ev.time_s[idx])
    energy = float(ev.energy_j[idx])
    busy = float(ev.gpu_busy_s[idx])
    idle = float(ev.idle_w[idx])
    t_u = ev.t_unique[:, idx]
    e_u = ev.e_unique[:, idx] + idle * t_u
    tot_t = cw.count * t_u
    tot_e = cw.count * e_u
    f_hz = f * 1e6
    precisions = [getattr(op, "precision", Precision.BF16) for op in cw.unique_ops]
    tensor_peak = np.array(
        [
            spec.tensor_flops_per_s(p if spec.supports_tensor(p) else Precision.BF16, f)
            for p in precisions
        ]
    )
    cuda_peak = spec.cuda_flops_per_s(Precision.FP32, f)
    activity = {
        "tensor": float(min(1.0, (cw.count * cw.tensor_flops / tensor_peak).sum() / time_s)),
        "fp32": float(min(1.0, (cw.count * cw.cuda_flops).sum() / cuda_peak / time_s)),
        "fp16": 0.0,
        "fp64": 0.0,
        "dram": float(
            min(1.0, (cw.count * cw.dram_bytes).sum() / spec.memory_bandwidth_b_s / time_s)
        ),
        "sm": float(min(1.0, (tot_t * cw.sm_fraction).sum() / time_s)),
        "gpu_busy": busy / time_s,
    }
    breakdown: list[ClassBreakdown] = []
    top: list[KernelRow] = []
    if detail:
        kinds: dict[str, list[float]] = {}
        for i, op in enumerate(cw.unique_ops):
            k = str(getattr(op, "kind", "op"))
            row = kinds.setdefault(k, [0.0, 0.0, 0.0])
            row[0] += cw.count[i]
            row[1] += tot_t[i]
            row[2] += tot_e[i]
        gap = max(0.0, time_s - busy)
        for k, (n, t, e) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
            breakdown.append(ClassBreakdown(k, int(n), t * 1e3, e, t / time_s))
        breakdown.append(ClassBreakdown("host/launch gaps", 0, gap * 1e3, idle * gap, gap / time_s))
        eta = np.where(cw.gemm_like, coeffs.time.eta_tensor, coeffs.time.eta_cuda)
        t_math = cw.math_cycles / (f_hz * eta)
        t_mem = cw.dram_bytes / (spec.memory_bandwidth_b_s * coeffs.time.eta_dram)
        lat = coeffs.time.kernel_latency_cycles / f_hz
        for i in np.argsort(-tot_t)[:TOP_KERNELS]:
            m, d = t_math[i], t_mem[i]
            bound = "latency" if lat > max(m, d) else ("compute" if m >= d else "memory")
            op = cw.unique_ops[i]
            top.append(
                KernelRow(
                    _describe(op),
                    str(getattr(op, "kind", "op")),
                    int(cw.count[i]),
                    float(tot_t[i]) * 1e3,
                    float(tot_e[i]),
                    bound,
                )
            )
    return Estimate(
        workload=workload.name,
        gpu=spec.id,
        time_s=time_s,
        energy_j=energy,
        avg_power_w=energy / time_s,
        sm_clock_mhz=f,
        requested_clock_mhz=requested,
        power_cap_w=cap,
        throttled=throttled,
        gpu_busy_s=busy,
        idle_power_w=idle,
        kernels=len(workload.ops),
        flops=float((cw.count * (cw.tensor_flops + cw.cuda_flops)).sum()),
        dram_bytes=float((cw.count * cw.dram_bytes).sum()),
        activity=activity,
        breakdown=tuple(breakdown),
        top_kernels=tuple(top),
        coefficients=coeffs.origin,
        host=host.id,
        tokens=workload.tokens,
    )
