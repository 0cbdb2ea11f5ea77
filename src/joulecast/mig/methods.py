"""Attribution methods: a ladder from slice split to online regression, behind one interface.

Every method returns, per sample and instance, a non-negative *weight* in watts-like units that the
engine turns into shares of the measured dynamic power (reconciliation), plus a static-power
estimate. Only the online method also predicts watts that mean something before reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import lsq_linear

from joulecast.mig.frame import FIELD_INDEX, FloatArray, GpuTelemetry

MethodName = Literal[
    "slice", "kepler", "ceems", "activity", "prototype", "offline", "online", "online-raw"
]
METHOD_NAMES: tuple[str, ...] = (
    "slice",
    "kepler",
    "ceems",
    "activity",
    "prototype",
    "offline",
    "online",
    "online-raw",
)

#: Model features, in whole-GPU units (instance ratio x instance share of the GPU).
MODEL_FEATURES: tuple[str, ...] = ("tensor", "dram", "fp", "sm", "busy")

# Generic watts per unit of whole-GPU activity on a ~400 W A100 (scaled by TDP elsewhere). Used as
# the L2 offline model and as a last-resort prior; deliberately not workload-specific.
PRIOR_W_PER_UNIT: dict[str, float] = {
    "tensor": 220.0,
    "dram": 110.0,
    "fp": 140.0,
    "sm": 60.0,
    "busy": 0.0,
}

_ACTIVE_THRESHOLD = 0.05


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Features derived from one GPU's telemetry.

    Attributes:
        features: (T, N, K) whole-GPU-normalised features in :data:`MODEL_FEATURES` order.
        gract: (T, N) per-instance engine activity (GRACT, or SMACT when GRACT is missing).
        compute_share: (N,) compute slices / total slices.
        active: (T, N) instance busy (activity above a small threshold) and present.
        notes: Feature fallbacks applied.
    """

    features: FloatArray
    gract: FloatArray
    compute_share: FloatArray
    active: NDArray[np.bool_]
    notes: tuple[str, ...] = ()


def model_inputs(gpu: GpuTelemetry) -> ModelInputs:
    """Normalise per-instance ratios into whole-GPU features (reference §5.2)."""
    a = gpu.activity
    notes: list[str] = []
    share = np.array([i.profile.compute_fraction for i in gpu.instances])
    mem = np.array([i.profile.memory_fraction for i in gpu.instances])

    def col(name: str) -> FloatArray:
        return a[:, :, FIELD_INDEX[name]]

    gract = col("gract").copy()
    smact = col("smact").copy()
    # GR_ENGINE_ACTIVE is missing on some H100 stacks (DCGM #226): fall back per instance.
    for i in range(a.shape[1]):
        if np.isnan(gract[:, i]).all():
            gract[:, i] = smact[:, i]
        if np.isnan(smact[:, i]).all():
            smact[:, i] = gract[:, i]
    missing_any = [
        f"{inst.gpu_instance_id}"
        for i, inst in enumerate(gpu.instances)
        if np.isnan(gract[:, i]).all()
    ]
    if missing_any:
        notes.append(
            f"GPU {gpu.gpu_uuid}: no GRACT or SMACT for instance(s) {', '.join(missing_any)}"
        )
    fp = np.nansum(np.stack([col("fp64_active"), col("fp32_active"), col("fp16_active")]), axis=0)
    for name in ("tensor_active", "dram_active", "fp32_active"):
        if np.isnan(col(name)).all():
            notes.append(f"GPU {gpu.gpu_uuid}: {name} not measured; the model works without it")
    feats = np.stack(
        [
            np.nan_to_num(col("tensor_active")) * share,
            np.nan_to_num(col("dram_active")) * mem,
            np.minimum(fp, 1.0) * share,
            np.nan_to_num(smact) * share,
            # GRACT is a time fraction: an on/off indicator that lets each instance have an
            # offset when busy, which a purely proportional model lacks (concave power curves).
            np.nan_to_num(gract) * share,
        ],
        axis=2,
    )
    gract = np.nan_to_num(gract)
    active = (gract > _ACTIVE_THRESHOLD) & gpu.present
    return ModelInputs(
        features=feats, gract=gract, compute_share=share, active=active, notes=tuple(notes)
    )


@dataclass(frozen=True, eq=False)
class MethodOutput:
    """What a method hands to the engine.

    Attributes:
        weights: (T, N) non-negative weights; shares of dynamic power are weights / row sum.
        static_w: (T,) static (idle) power estimate per sample.
        static_source: How the static power was obtained.
        predicted_w: (T, N) modelled dynamic power in W when the method has one (else None).
        diagnostics: Method-specific diagnostics (JSON-serialisable).
        reconcile: Whether the engine scales weights to the measured total (False only for
            ``online-raw``, which exists to show what reconciliation buys).
    """

    weights: FloatArray
    static_w: FloatArray
    static_source: str
    predicted_w: FloatArray | None = None
    diagnostics: dict[str, object] = field(default_factory=dict)
    reconcile: bool = True


class Method(Protocol):
    """An attribution method."""

    def __call__(
        self, gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
    ) -> MethodOutput:
        """Compute weights and static power for one GPU."""
        ...


def estimate_idle_floor(gpu: GpuTelemetry, inputs: ModelInputs) -> tuple[float, str]:
    """Static power for ratio methods: the median power while no instance is busy.

    Kepler takes the minimum; with a noisy sensor that is biased low, so the median of all-idle
    samples is used. With too few idle samples the 1st percentile is the (upward-biased) fallback.
    """
    idle = ~inputs.active.any(axis=1)
    if int(idle.sum()) >= 10:
        return float(np.median(gpu.board_power_w[idle])), "all-idle median"
    return float(np.percentile(gpu.board_power_w, 1.0)), "1st percentile (no all-idle samples)"


def _static(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> tuple[FloatArray, str]:
    n_t = gpu.time_s.size
    if idle_power_w is not None:
        return np.full(n_t, idle_power_w), "given"
    value, source = estimate_idle_floor(gpu, inputs)
    return np.full(n_t, value), source


def slice_split(gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None) -> MethodOutput:
    """L0: split by compute slices among present instances; needs no activity."""
    static, source = _static(gpu, inputs, idle_power_w)
    w = np.where(gpu.present, inputs.compute_share[None, :], 0.0)
    return MethodOutput(weights=w, static_w=static, static_source=source)


def kepler_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """Kepler 2026: raw GR_ENGINE_ACTIVE ratio, not weighted by slices."""
    static, source = _static(gpu, inputs, idle_power_w)
    return MethodOutput(weights=inputs.gract * gpu.present, static_w=static, static_source=source)


def ceems_split(gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None) -> MethodOutput:
    """CEEMS: slices x SM_ACTIVE x SM_OCCUPANCY (applied to dynamic power, same idle as others)."""
    static, source = _static(gpu, inputs, idle_power_w)
    a = gpu.activity
    smact = np.nan_to_num(a[:, :, FIELD_INDEX["smact"]], nan=0.0)
    smocc = a[:, :, FIELD_INDEX["smocc"]]
    smocc = np.where(np.isnan(smocc), 1.0, smocc)
    w = inputs.compute_share[None, :] * smact * smocc
    return MethodOutput(weights=w, static_w=static, static_source=source)


def activity_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """L1: slice-weighted GRACT ratio."""
    static, source = _static(gpu, inputs, idle_power_w)
    w = inputs.compute_share[None, :] * inputs.gract
    return MethodOutput(weights=w, static_w=static, static_source=source)


def prototype_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """The dcgm-exporter prototype of a paper co-author: fixed weights x slices x SM terms."""
    static, source = _static(gpu, inputs, idle_power_w)
    a = np.nan_to_num(gpu.activity)
    ix = FIELD_INDEX
    score = (
        0.338 * a[:, :, ix["tensor_active"]]
        + 0.152 * a[:, :, ix["dram_active"]]
        + 0.17
        * (a[:, :, ix["fp64_active"]] + a[:, :, ix["fp32_active"]] + a[:, :, ix["fp16_active"]])
    )
    w = score * inputs.compute_share[None, :] * a[:, :, ix["smact"]] * a[:, :, ix["smocc"]]
    return MethodOutput(weights=w, static_w=static, static_source=source)


def offline_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """L2: a generic offline linear model (same coefficients for every workload)."""
    static, source = _static(gpu, inputs, idle_power_w)
    beta = np.array([PRIOR_W_PER_UNIT[f] for f in MODEL_FEATURES])
    pred = inputs.features @ beta
    return MethodOutput(weights=pred, static_w=static, static_source=source, predicted_w=pred)


@dataclass(frozen=True)
class OnlineConfig:
    """Settings of the online sliding-window regression.

    Attributes:
        window_s: Length of the fitting window.
        step_s: Coefficients are refitted every ``step_s``; each step uses the window centred on it.
        shrink: Ridge strength pulling per-instance coefficients toward the pooled fit, relative
            to each column's energy (0.05 pulls an orthogonal column 5 % of the way).
        lockstep_corr: Instances whose activity correlates above this share one coefficient vector.
        max_lag_s: Largest power-sensor lag searched for.
    """

    window_s: float = 1200.0
    step_s: float = 300.0
    shrink: float = 0.01
    lockstep_corr: float = 0.97
    max_lag_s: float = 3.0


@dataclass(frozen=True, eq=False)
class WindowFit:
    """Coefficients fitted on one window.

    Attributes:
        intercept_w: Static power estimate (the model intercept).
        beta: (N, K) watts per unit whole-GPU feature, per instance.
        condition: Condition number of the column-scaled design.
        max_corr: Largest correlation between two instances' total activity.
        lockstep: Groups of instance indices that were tied together.
    """

    intercept_w: float
    beta: FloatArray
    condition: float
    max_corr: float
    lockstep: tuple[tuple[int, ...], ...]


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


def estimate_lag(power_w: FloatArray, features: FloatArray, max_lag: int) -> int:
    """Samples by which power lags activity, from the cross-correlation of first differences."""
    if max_lag <= 0 or power_w.size < 4 * max_lag + 8:
        return 0
    total = features.sum(axis=(1, 2))
    dp = np.diff(power_w)
    da = np.diff(total)
    best, best_c = 0, -np.inf
    for lag in range(max_lag + 1):
        x = da[: da.size - lag]
        y = dp[lag:]
        sx, sy = x.std(), y.std()
        if sx == 0 or sy == 0:
            continue
        c = float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))
        if c > best_c:
            best, best_c = lag, c
    return best


def _groups(x: FloatArray, threshold: float) -> tuple[tuple[int, ...], ...]:
    """Union instances whose total activity series correlate above ``threshold``."""
    n = x.shape[1]
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    std = x.std(axis=0)
    live = np.flatnonzero(std > 1e-6)
    if live.size >= 2:
        c = np.atleast_2d(np.corrcoef(x[:, live].T))
        for a in range(live.size):
            for b in range(a + 1, live.size):
                if c[a, b] > threshold:
                    parent[find(int(live[a]))] = find(int(live[b]))
    out: dict[int, list[int]] = {}
    for i in range(n):
        out.setdefault(find(i), []).append(i)
    return tuple(tuple(g) for g in out.values())


def fit_window(
    power_w: FloatArray,
    features: FloatArray,
    *,
    idle_power_w: float | None,
    shrink: float,
    lockstep_corr: float,
) -> WindowFit:
    """Fit P = b0 + sum_i sum_k beta_ik u_ik with beta >= 0, shrunk toward a pooled fit.

    Args:
        power_w: (T,) board power.
        features: (T, N, K) whole-GPU features.
        idle_power_w: Known static power; when given the intercept is fixed to it.
        shrink: Relative ridge strength toward the pooled coefficients.
        lockstep_corr: Correlation above which instances share coefficients.

    Returns:
        The fitted coefficients and diagnostics.
    """
    n_t, n_i, n_k = features.shape
    p_lo = float(np.min(power_w))
    fixed = idle_power_w is not None
    y = power_w - (idle_power_w if idle_power_w is not None else 0.0)

    def solve(x: FloatArray, center: FloatArray | None, lam: FloatArray | None) -> FloatArray:
        cols = x.shape[1]
        a = x if fixed else np.hstack([np.ones((n_t, 1)), x])
        lb = np.zeros(a.shape[1])
        ub = np.full(a.shape[1], np.inf)
        if not fixed:
            ub[0] = max(p_lo, 1e-6)
        b = y
        if center is not None and lam is not None:
            reg = np.zeros((cols, a.shape[1]))
            off = 0 if fixed else 1
            reg[np.arange(cols), off + np.arange(cols)] = np.sqrt(lam)
            a = np.vstack([a, reg])
            b = np.concatenate([y, np.sqrt(lam) * center])
        # Same least-squares problem reduced to its square R factor: BVLS then works on a
        # cols x cols system instead of the full window, which keeps a day under a few seconds.
        gram = a.T @ a
        gram[np.diag_indices_from(gram)] += 1e-10 * (np.trace(gram) + 1.0)
        r = np.linalg.cholesky(gram).T
        rhs = np.linalg.solve(r.T, a.T @ b)
        res = lsq_linear(r, rhs, bounds=(lb, ub), method="bvls")
        return np.asarray(res.x, dtype=np.float64)

    pooled_x = features.sum(axis=1)
    pooled = solve(pooled_x, None, None)
    pooled_beta = pooled if fixed else pooled[1:]

    totals = features.sum(axis=2)
    groups = _groups(totals, lockstep_corr)
    gx = np.stack([features[:, list(g), :].sum(axis=1) for g in groups], axis=1)
    x = gx.reshape(n_t, len(groups) * n_k)
    energy = (x**2).sum(axis=0)
    lam = shrink * energy + 1e-9
    center = np.tile(pooled_beta, len(groups))
    coef = solve(x, center, lam)
    intercept = idle_power_w if idle_power_w is not None else float(coef[0])
    gbeta = (coef if fixed else coef[1:]).reshape(len(groups), n_k)
    beta = np.zeros((n_i, n_k))
    for gi, g in enumerate(groups):
        beta[list(g)] = gbeta[gi]
    scale = np.sqrt(energy)
    live = scale > 1e-9
    if live.any():
        xs = x[:, live] / scale[live]
        eig = np.linalg.eigvalsh(xs.T @ xs)
        cond = float(np.sqrt(eig[-1] / eig[0])) if eig[0] > 0 else float("inf")
    else:
        cond = float("inf")
    std = totals.std(axis=0)
    live_i = np.flatnonzero(std > 1e-6)
    max_corr = 0.0
    if live_i.size >= 2:
        c = np.corrcoef(totals[:, live_i].T)
        np.fill_diagonal(c, 0.0)
        max_corr = float(np.max(c))
    return WindowFit(
        intercept_w=intercept,
        beta=beta,
        condition=cond,
        max_corr=max_corr,
        lockstep=tuple(g for g in groups if len(g) > 1),
    )


def online_fit(
    gpu: GpuTelemetry,
    inputs: ModelInputs,
    idle_power_w: float | None,
    config: OnlineConfig | None = None,
) -> MethodOutput:
    """L3: sliding-window non-negative regression on the board total, per instance.

    Each ``step_s`` segment uses coefficients fitted on the window centred on it (batch
    attribution may look ahead; the live service uses trailing windows).
    """
    cfg = config or OnlineConfig()
    source = "given"
    if idle_power_w is None:
        idle_power_w = settled_idle_power(gpu, inputs)
        source = "all-idle median" if idle_power_w is not None else "online intercept"
    t = gpu.time_s
    n_t = t.size
    dt = float(np.median(np.diff(t))) if n_t > 1 else 1.0
    lag = estimate_lag(gpu.board_power_w, inputs.features, round(cfg.max_lag_s / dt))
    feats = inputs.features
    if lag:
        feats = np.concatenate([np.repeat(feats[:1], lag, axis=0), feats[:-lag]], axis=0)
    win = max(round(cfg.window_s / dt), 8)
    step = max(round(cfg.step_s / dt), 1)
    pred = np.zeros((n_t, feats.shape[1]))
    static = np.zeros(n_t)
    windows: list[dict[str, object]] = []
    for start in range(0, n_t, step):
        stop = min(start + step, n_t)
        center = (start + stop) // 2
        lo = max(0, min(center - win // 2, n_t - win))
        hi = min(n_t, lo + win)
        fit = fit_window(
            gpu.board_power_w[lo:hi],
            feats[lo:hi],
            idle_power_w=idle_power_w,
            shrink=cfg.shrink,
            lockstep_corr=cfg.lockstep_corr,
        )
        pred[start:stop] = np.einsum("tnk,nk->tn", feats[start:stop], fit.beta)
        static[start:stop] = fit.intercept_w
        windows.append(
            {
                "t_start_s": float(t[start]),
                "t_end_s": float(t[stop - 1]),
                "intercept_w": round(fit.intercept_w, 3),
                "condition": round(fit.condition, 2) if np.isfinite(fit.condition) else None,
                "max_instance_corr": round(fit.max_corr, 4),
                "lockstep_groups": [
                    [gpu.instances[i].gpu_instance_id for i in g] for g in fit.lockstep
                ],
            }
        )
    return MethodOutput(
        weights=pred,
        static_w=static,
        static_source=source,
        predicted_w=pred,
        diagnostics={"lag_s": lag * dt, "windows": windows},
    )


def online_raw(gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None) -> MethodOutput:
    """L3 without reconciliation: modelled watts as they are; the gap becomes residual."""
    out = online_fit(gpu, inputs, idle_power_w)
    return MethodOutput(
        weights=out.weights,
        static_w=out.static_w,
        static_source=out.static_source,
        predicted_w=out.predicted_w,
        diagnostics=out.diagnostics,
        reconcile=False,
    )


METHODS: dict[str, Method] = {
    "slice": slice_split,
    "kepler": kepler_split,
    "ceems": ceems_split,
    "activity": activity_split,
    "prototype": prototype_split,
    "offline": offline_split,
    "online": online_fit,
    "online-raw": online_raw,
}
