"""Attribution engine: method weights -> reconciled per-instance power and energy.

The accounting identity ``measured = static + sum(dynamic) + residual`` holds in every interval by
construction: components are computed per sample so that they add up to the measured board
power, then integrated with the same trapezoid rule (or scaled to the energy-counter difference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from joulecast.errors import TelemetryError
from joulecast.mig.frame import FloatArray, GpuTelemetry, Telemetry
from joulecast.mig.limits import MAX_BOARD_POWER_W, check_setting
from joulecast.mig.methods import MethodOutput, ModelInputs, get_method, model_inputs

StaticPolicy = Literal["reserved", "active-only", "proportional", "unattributed"]
STATIC_POLICIES: tuple[str, ...] = ("reserved", "active-only", "proportional", "unattributed")

# A counter step far outside what the power readings allow is a reset or a wrap, not energy.
_COUNTER_TOLERANCE = 0.5


@dataclass(frozen=True)
class InstanceResult:
    """Energy attributed to one instance.

    Attributes:
        gpu_instance_id: GPU-instance id.
        profile: Profile name as reported.
        dynamic_energy_j: Dynamic (activity-caused) energy.
        static_energy_j: Share of static energy under the policy.
    """

    gpu_instance_id: str
    profile: str
    dynamic_energy_j: float
    static_energy_j: float

    @property
    def energy_j(self) -> float:
        """Dynamic plus static energy."""
        return self.dynamic_energy_j + self.static_energy_j


@dataclass(frozen=True, eq=False)
class GpuResult:
    """Attribution of one GPU.

    Attributes:
        gpu_uuid: GPU UUID.
        energy_j: Measured board energy.
        static_energy_j: Static energy (attributed plus unattributed).
        static_unattributed_j: Static energy kept at GPU level by the policy.
        dynamic_energy_j: Sum of instance dynamic energies.
        residual_j: Energy the model could not explain (negative when power fell below static).
        instances: Per-instance results.
        time_s: (T,) sample times.
        board_power_w: (T,) measured power.
        dynamic_power_w: (T, N) reconciled dynamic power per instance.
        static_power_w: (T, N) static power share per instance.
        diagnostics: Method, static source, gaps, excitation, per-window fit quality.
    """

    gpu_uuid: str
    energy_j: float
    static_energy_j: float
    static_unattributed_j: float
    dynamic_energy_j: float
    residual_j: float
    instances: tuple[InstanceResult, ...]
    time_s: FloatArray
    board_power_w: FloatArray
    dynamic_power_w: FloatArray
    static_power_w: FloatArray
    diagnostics: dict[str, object] = field(default_factory=dict)

    @property
    def conservation_error_j(self) -> float:
        """Measured energy minus the sum of all components (zero up to rounding)."""
        return self.energy_j - (self.static_energy_j + self.dynamic_energy_j + self.residual_j)


@dataclass(frozen=True)
class AttributionResult:
    """Attribution of every GPU in a telemetry source.

    Attributes:
        method: Method name.
        static_policy: Static-power policy name.
        gpus: Per-GPU results.
        warnings: Reader and engine warnings.
    """

    method: str
    static_policy: str
    gpus: tuple[GpuResult, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict following the CLI contract (plus diagnostics)."""
        return {
            "method": self.method,
            "static_policy": self.static_policy,
            "gpus": [
                {
                    "gpu_uuid": g.gpu_uuid,
                    "energy_j": g.energy_j,
                    "static_energy_j": g.static_energy_j,
                    "static_unattributed_j": g.static_unattributed_j,
                    "dynamic_energy_j": g.dynamic_energy_j,
                    "residual_j": g.residual_j,
                    "duration_s": float(g.time_s[-1] - g.time_s[0]) if g.time_s.size else 0.0,
                    "mean_power_w": float(np.mean(g.board_power_w)),
                    "instances": [
                        {
                            "gpu_instance_id": i.gpu_instance_id,
                            "profile": i.profile,
                            "dynamic_energy_j": i.dynamic_energy_j,
                            "static_energy_j": i.static_energy_j,
                            "energy_j": i.energy_j,
                        }
                        for i in g.instances
                    ],
                    "diagnostics": g.diagnostics,
                }
                for g in self.gpus
            ],
            "warnings": list(self.warnings),
        }


def reconcile(
    power_w: FloatArray, static_w: FloatArray, weights: FloatArray, *, scale: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Split ``power - static`` among instances in proportion to their weights, per sample.

    Args:
        power_w: (T,) measured power.
        static_w: (T,) static power.
        weights: (T, N) non-negative weights (modelled watts for regression methods).
        scale: If False, weights are taken as watts and not rescaled (no reconciliation).

    Returns:
        ``(dynamic_w (T, N), residual_w (T,))``; static + dynamic.sum(1) + residual == power.
    """
    w = np.maximum(np.nan_to_num(weights), 0.0)
    avail = power_w - static_w
    total = w.sum(axis=1)
    if scale:
        ok = (total > 1e-9) & (avail > 0)
        factor = np.where(ok, avail / np.where(ok, total, 1.0), 0.0)
        dyn = w * factor[:, None]
    else:
        dyn = w
    residual = power_w - static_w - dyn.sum(axis=1)
    return dyn, residual


def split_static(
    policy: str,
    static_w: FloatArray,
    present: np.ndarray,
    active: np.ndarray,
    compute_share: FloatArray,
    dynamic_w: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Share static power among instances under a named policy.

    Args:
        policy: ``reserved`` (by slices held; unallocated slices stay at GPU level),
            ``active-only`` (by slices among busy instances), ``proportional`` (by dynamic power),
            or ``unattributed`` (all static stays at GPU level).
        static_w: (T,) static power.
        present: (T, N) instance exists.
        active: (T, N) instance is busy.
        compute_share: (N,) compute slices / total.
        dynamic_w: (T, N) reconciled dynamic power.

    Returns:
        ``(per_instance_w (T, N), unattributed_w (T,))``.

    Raises:
        TelemetryError: On an unknown policy.
    """
    if policy == "reserved":
        frac = np.where(present, compute_share[None, :], 0.0)
    elif policy == "active-only":
        w = np.where(active, compute_share[None, :], 0.0)
        s = w.sum(axis=1, keepdims=True)
        frac = np.divide(w, s, out=np.zeros_like(w), where=s > 0)
    elif policy == "proportional":
        s = dynamic_w.sum(axis=1, keepdims=True)
        frac = np.divide(dynamic_w, s, out=np.zeros_like(dynamic_w), where=s > 0)
    elif policy == "unattributed":
        frac = np.zeros_like(dynamic_w)
    else:
        raise TelemetryError(
            f"unknown static policy '{policy}' (known: {', '.join(STATIC_POLICIES)})"
        )
    per = static_w[:, None] * frac
    return per, static_w - per.sum(axis=1)


def _interval_energy(gpu: GpuTelemetry, notes: list[str]) -> tuple[FloatArray, FloatArray]:
    """Per-interval measured energy and the trapezoid energy of power, both (T-1,)."""
    t = gpu.time_s
    dt = np.diff(t)
    p = gpu.board_power_w
    trap = 0.5 * (p[1:] + p[:-1]) * dt
    e = gpu.energy_counter_j
    if e is None:
        return trap, trap
    de = np.diff(e)
    bad = (
        np.isnan(de)
        | (de < 0)
        | (np.abs(de - trap) > _COUNTER_TOLERANCE * np.maximum(trap, 1.0) + 5.0)
    )
    if bad.any():
        notes.append(
            f"GPU {gpu.gpu_uuid}: energy counter reset or inconsistent in {int(bad.sum())} "
            "intervals; used integrated power there"
        )
    return np.where(bad, trap, de), trap


def _integrate(x: FloatArray, dt: FloatArray, scale: FloatArray) -> FloatArray:
    """Trapezoid integral of each column over intervals, scaled per interval."""
    seg = 0.5 * (x[1:] + x[:-1]) * dt.reshape((-1,) + (1,) * (x.ndim - 1))
    return np.asarray((seg * scale.reshape((-1,) + (1,) * (x.ndim - 1))).sum(axis=0))


def check_idle_power(idle_power_w: float | None, gpu: GpuTelemetry) -> None:
    """Reject a known static power the board never reached (it would make shares above 100 %).

    Raises:
        TelemetryError: On a negative or non-finite value, or one above the GPU's highest
            measured board power.
    """
    check_setting("--idle-power-w", idle_power_w, positive=False, upper=MAX_BOARD_POWER_W)
    top = float(np.max(gpu.board_power_w)) if gpu.board_power_w.size else 0.0
    if idle_power_w is not None and idle_power_w > top:
        raise TelemetryError(
            f"--idle-power-w {idle_power_w:g} W is above the highest measured board power of "
            f"GPU {gpu.gpu_uuid} ({top:.1f} W); static power cannot exceed board power"
        )


def attribute_gpu(
    gpu: GpuTelemetry,
    *,
    method: str = "online",
    static_policy: str = "reserved",
    idle_power_w: float | None = None,
    output: MethodOutput | None = None,
) -> GpuResult:
    """Attribute one GPU's energy to its instances.

    Args:
        gpu: Telemetry of one GPU.
        method: Name from :data:`joulecast.mig.methods.METHOD_NAMES`.
        static_policy: Name from :data:`STATIC_POLICIES`.
        idle_power_w: Known static power; estimated by the method when None.
        output: Precomputed method output (used by the benchmark to avoid refitting).

    Returns:
        The GPU result.

    Raises:
        UnknownMethodError: On an unknown method (a :class:`TelemetryError`).
        TelemetryError: On an unknown policy, fewer than two samples, or an idle power that is
            negative, not finite or above the highest measured board power.
    """
    method_fn = get_method(method)
    if gpu.time_s.size < 2:
        raise TelemetryError(f"GPU {gpu.gpu_uuid}: need at least two samples to integrate energy")
    check_idle_power(idle_power_w, gpu)
    notes: list[str] = []
    inputs: ModelInputs = model_inputs(gpu)
    notes.extend(inputs.notes)
    out = output if output is not None else method_fn(gpu, inputs, idle_power_w)
    dyn, residual = reconcile(gpu.board_power_w, out.static_w, out.weights, scale=out.reconcile)
    stat_i, stat_u = split_static(
        static_policy, out.static_w, gpu.present, inputs.active, inputs.compute_share, dyn
    )
    measured, trap = _interval_energy(gpu, notes)
    dt = np.diff(gpu.time_s)
    scale = np.divide(measured, trap, out=np.ones_like(trap), where=np.abs(trap) > 1e-9)
    dyn_e = _integrate(dyn, dt, scale)
    stat_e = _integrate(stat_i, dt, scale)
    stat_u_e = float(_integrate(stat_u, dt, scale))
    resid_e = float(_integrate(residual, dt, scale))
    # Intervals with zero trapezoid energy but counter energy (rare) go to the residual.
    resid_e += float(np.sum(np.where(np.abs(trap) > 1e-9, 0.0, measured)))
    energy = float(measured.sum())
    med_dt = float(np.median(dt))
    gaps = np.flatnonzero(dt > 5.0 * med_dt)
    if gaps.size:
        notes.append(
            f"GPU {gpu.gpu_uuid}: {gaps.size} time gaps longer than 5x the sample period "
            f"(largest {float(dt.max()):g} s); energy across them is interpolated"
        )
    active = inputs.active
    alone = active & (active.sum(axis=1, keepdims=True) == 1)
    instances = tuple(
        InstanceResult(
            gpu_instance_id=inst.gpu_instance_id,
            profile=inst.profile.name,
            dynamic_energy_j=float(dyn_e[i]),
            static_energy_j=float(stat_e[i]),
        )
        for i, inst in enumerate(gpu.instances)
    )
    diag: dict[str, object] = {
        "method": method,
        "static_policy": static_policy,
        "static_source": out.static_source,
        "static_power_w_mean": float(np.mean(out.static_w)),
        "samples": int(gpu.time_s.size),
        "sample_period_s": med_dt,
        "time_gaps": int(gaps.size),
        "excitation_alone_fraction": {
            inst.gpu_instance_id: float(alone[:, i].mean()) for i, inst in enumerate(gpu.instances)
        },
        "gap_samples": {
            inst.gpu_instance_id: int(gpu.gap_samples[i]) for i, inst in enumerate(gpu.instances)
        }
        if gpu.gap_samples.size
        else {},
        "notes": notes,
        **out.diagnostics,
    }
    static_total = float(stat_e.sum()) + stat_u_e
    return GpuResult(
        gpu_uuid=gpu.gpu_uuid,
        energy_j=energy,
        static_energy_j=static_total,
        static_unattributed_j=stat_u_e,
        dynamic_energy_j=float(dyn_e.sum()),
        residual_j=resid_e,
        instances=instances,
        time_s=gpu.time_s,
        board_power_w=gpu.board_power_w,
        dynamic_power_w=dyn,
        static_power_w=stat_i,
        diagnostics=diag,
    )


def attribute(
    telemetry: Telemetry,
    *,
    method: str = "online",
    static_policy: str = "reserved",
    idle_power_w: float | None = None,
) -> AttributionResult:
    """Attribute every GPU of a telemetry source.

    Args:
        telemetry: Parsed telemetry.
        method: Attribution method name.
        static_policy: Static-power policy name.
        idle_power_w: Known static power per GPU; estimated when None.

    Returns:
        The attribution.
    """
    if static_policy not in STATIC_POLICIES:
        raise TelemetryError(
            f"unknown static policy '{static_policy}' (known: {', '.join(STATIC_POLICIES)})"
        )
    gpus = tuple(
        attribute_gpu(g, method=method, static_policy=static_policy, idle_power_w=idle_power_w)
        for g in telemetry.gpus
    )
    notes = list(telemetry.warnings)
    for g in gpus:
        notes.extend(str(n) for n in g.diagnostics.get("notes", []))  # type: ignore[attr-defined]
    return AttributionResult(
        method=method, static_policy=static_policy, gpus=gpus, warnings=tuple(notes)
    )
