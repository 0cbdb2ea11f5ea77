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
from scipy.signal import lfilter

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

    The defaults were chosen on :data:`joulecast.mig.synth.TUNING_SCENARIOS` with
    :data:`joulecast.mig.synth.TUNING_SEEDS` only; the held-out report uses other scenarios and
    seeds (see ``docs/mig.md``).

    Attributes:
        window_s: Length of the fitting window (whole steps, centred on each step).
        step_s: Coefficients are refitted every ``step_s``.
        shrink: Ridge strength pulling each window's per-instance coefficients toward ``center``,
            relative to each column's energy (0.03 pulls an orthogonal column 3 % of the way).
            A window in which an instance is barely excited falls back on the centre.
        center: ``run``: the same instance's (and regime's) coefficients fitted on the whole
            run; ``pooled``: one vector shared by all instances in the window.
        lockstep_corr: Instances whose activity correlates above this in a window share one
            coefficient vector (replicas cannot be told apart).
        max_lag_s: Largest power-sensor delay searched for.
        sensor_taus_s: Candidate time constants of the power sensor's first-order averaging;
            the features go through the best delay and filter so that they line up with the
            reading.
        contention: Model a shared memory-system term, gamma x (total DRAM traffic)^2, and
            share it by traffic (the Aumann-Shapley share of a cost that depends on the total).
        regimes: Split an instance at persistent changes of its workload mix (change points)
            and give each regime its own coefficients.
        regime_min_s: Shortest busy time on each side of a change point.
        regime_min_shift: Smallest change of the L1-normalised (tensor, DRAM, FP, SM) mix that
            counts as a workload switch.
        max_regimes: Most regimes per instance.
        idle_min_samples: Settled all-idle samples needed to measure static power directly
            (otherwise the regression intercept is used).
        cap_detect: Share of busy samples within ``cap_band`` of the power ceiling above which
            the board is taken to be power-capped.
        cap_band: Width of the band under the ceiling, as a fraction of ceiling dynamic power.
        cap_knee: When capped, refit on samples whose modelled demand is below this fraction of
            the ceiling's dynamic power (1.0 disables the cap handling).
    """

    window_s: float = 1500.0
    step_s: float = 300.0
    shrink: float = 0.03
    center: Literal["run", "pooled"] = "run"
    lockstep_corr: float = 0.97
    max_lag_s: float = 3.0
    sensor_taus_s: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    contention: bool = True
    regimes: bool = True
    regime_min_s: float = 300.0
    regime_min_shift: float = 0.2
    max_regimes: int = 4
    idle_min_samples: int = 10
    cap_detect: float = 0.1
    cap_band: float = 0.05
    cap_knee: float = 0.85


@dataclass(frozen=True, eq=False)
class WindowFit:
    """Coefficients fitted on one window.

    Attributes:
        intercept_w: Static power estimate (the model intercept).
        beta: (N, K) watts per unit whole-GPU feature, per instance.
        condition: Condition number of the column-scaled design.
        max_corr: Largest correlation between two instances' total activity.
        lockstep: Groups of instance indices that were tied together.
        contention_w: Watts of the shared memory-system term per unit of (total traffic)^2.
    """

    intercept_w: float
    beta: FloatArray
    condition: float
    max_corr: float
    lockstep: tuple[tuple[int, ...], ...]
    contention_w: float = 0.0


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


def detect_regimes(
    inputs: ModelInputs,
    *,
    min_busy: int,
    min_shift: float,
    max_regimes: int,
    chunk: int = 30,
) -> NDArray[np.intp]:
    """Label each sample of each instance with a workload regime (change points in the mix).

    The signature of a busy sample is its L1-normalised (tensor, DRAM, FP, SM) mix, which does
    not change with the load level. Busy samples are summarised in chunks of ``chunk`` by their
    median (short prefill bursts drop out), and binary segmentation splits the chunk series where
    the mean mix shifts by at least ``min_shift`` (L1) with ``min_busy`` busy samples on each
    side. Idle samples inherit the regime of the previous busy sample.

    Returns:
        (T, N) regime index per sample and instance (0 .. regimes-1, in time order).
    """
    feats = inputs.features
    n_t, n_i = feats.shape[:2]
    labels = np.zeros((n_t, n_i), dtype=np.intp)
    min_chunks = max(min_busy // chunk, 1)
    for i in range(n_i):
        busy = np.flatnonzero(inputs.active[:, i])
        n_chunks = busy.size // chunk
        if n_chunks < 2 * min_chunks or max_regimes < 2:
            continue
        mix = feats[busy[: n_chunks * chunk], i, :4]
        norm = mix.sum(axis=1, keepdims=True)
        mix = np.divide(mix, norm, out=np.zeros_like(mix), where=norm > 0)
        sig = np.median(mix.reshape(n_chunks, chunk, 4), axis=1)
        cuts = _segment(sig, min_chunks, min_shift, max_regimes)
        if not cuts:
            continue
        # Regime boundaries in time: at the first busy sample of each new segment.
        bounds = busy[np.array(cuts) * chunk]
        labels[:, i] = np.searchsorted(bounds, np.arange(n_t), side="right")
    return labels


def _segment(sig: FloatArray, min_len: int, min_shift: float, max_parts: int) -> list[int]:
    """Binary segmentation of a (M, F) series; returns sorted cut indices."""
    cuts: list[int] = []
    pending = [(0, sig.shape[0])]
    while pending and len(cuts) + 1 < max_parts:
        best: tuple[float, int, int, int] | None = None
        for a, b in pending:
            n = b - a
            if n < 2 * min_len:
                continue
            cs = np.cumsum(sig[a:b], axis=0)
            total = cs[-1]
            k = np.arange(min_len, n - min_len + 1)
            left = cs[k - 1] / k[:, None]
            right = (total - cs[k - 1]) / (n - k)[:, None]
            gain = (k * (n - k) / n) * ((left - right) ** 2).sum(axis=1)
            j = int(np.argmax(gain))
            shift = float(np.abs(left[j] - right[j]).sum())
            if shift >= min_shift and (best is None or gain[j] > best[0]):
                best = (float(gain[j]), a, b, a + int(k[j]))
        if best is None:
            break
        _, a, b, cut = best
        cuts.append(cut)
        pending.remove((a, b))
        pending.extend([(a, cut), (cut, b)])
    return sorted(cuts)


def _bounded_normal_solve(
    gram: FloatArray, rhs: FloatArray, lb: FloatArray, ub: FloatArray
) -> FloatArray:
    """Minimise ``x' G x - 2 rhs' x`` within bounds (BVLS on the Cholesky factor of G)."""
    g = gram.copy()
    g[np.diag_indices_from(g)] += 1e-10 * (np.trace(g) + 1.0)
    r = np.linalg.cholesky(g).T
    b = np.linalg.solve(r.T, rhs)
    res = lsq_linear(r, b, bounds=(lb, ub), method="bvls")
    return np.asarray(res.x, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class _Layout:
    """Column layout of a window's sufficient statistics.

    Columns are ``[1, U_0 (K), ..., U_{V-1} (K), c?, y]``: intercept, per-(virtual) instance
    features, optional shared contention term, board power.

    Attributes:
        n_virtual: Number of virtual instances (one per instance and workload regime).
        n_k: Features per instance.
        contention: Whether the shared contention column is present.
        owner: (V,) physical instance of each virtual instance.
    """

    n_virtual: int
    n_k: int
    contention: bool
    owner: NDArray[np.intp]

    @property
    def size(self) -> int:
        """Number of columns."""
        return 1 + self.n_virtual * self.n_k + int(self.contention) + 1

    def feat(self, v: int) -> slice:
        """Columns of virtual instance ``v``."""
        return slice(1 + v * self.n_k, 1 + (v + 1) * self.n_k)

    @property
    def c(self) -> int:
        """Column of the contention term."""
        return 1 + self.n_virtual * self.n_k

    @property
    def y(self) -> int:
        """Column of the board power."""
        return self.size - 1


def _solve_stats(
    gram: FloatArray,
    lay: _Layout,
    *,
    p_min: float,
    idle_power_w: float | None,
    shrink: float,
    lockstep_corr: float,
    center: FloatArray | None = None,
) -> WindowFit:
    """Fit one window from its sufficient statistics ``Z'Z`` (see :class:`_Layout`).

    Args:
        gram: (D, D) sums of ``z z'`` over the window's rows.
        lay: Column layout.
        p_min: Lowest board power in the window (upper bound of a free intercept).
        idle_power_w: Known static power (fixes the intercept), or None to fit it.
        shrink: Ridge strength toward ``center``, relative to each column's energy.
        lockstep_corr: Correlation above which instances share one coefficient vector.
        center: (V, K) coefficients to shrink toward; None shrinks toward the pooled fit (all
            instances sharing one vector).

    Returns:
        The window's coefficients (per virtual instance) and diagnostics.
    """
    n_v, n_k = lay.n_virtual, lay.n_k
    fixed = idle_power_w is not None
    idle = 0.0 if idle_power_w is None else float(idle_power_w)
    n = float(gram[0, 0])
    energy_v = np.array([np.trace(gram[lay.feat(v), lay.feat(v)]) for v in range(n_v)])
    live_v = np.flatnonzero(energy_v > 1e-12)

    def design(groups: list[list[int]]) -> FloatArray:
        """Map base columns to [1?, group features, c?, y'] (y' = y - idle when fixed)."""
        cols: list[FloatArray] = []
        if not fixed:
            e = np.zeros(lay.size)
            e[0] = 1.0
            cols.append(e)
        for g in groups:
            for k in range(n_k):
                e = np.zeros(lay.size)
                for v in g:
                    e[1 + v * n_k + k] = 1.0
                cols.append(e)
        if lay.contention:
            e = np.zeros(lay.size)
            e[lay.c] = 1.0
            cols.append(e)
        e = np.zeros(lay.size)
        e[lay.y] = 1.0
        if fixed:
            e[0] = -idle
        cols.append(e)
        return np.stack(cols, axis=1)

    def bounds(n_groups: int) -> tuple[FloatArray, FloatArray]:
        m = int(not fixed) + n_groups * n_k + int(lay.contention)
        lb = np.zeros(m)
        ub = np.full(m, np.inf)
        if not fixed:
            ub[0] = max(p_min, 1e-6)
        return lb, ub

    off = int(not fixed)
    if center is None:
        center = np.zeros((n_v, n_k))
        if shrink > 0 and live_v.size:
            # Pooled fit: every instance shares one coefficient vector.
            tp = design([list(live_v.tolist())])
            gp = tp.T @ gram @ tp
            lb, ub = bounds(1)
            sol = _bounded_normal_solve(gp[:-1, :-1], gp[:-1, -1], lb, ub)
            center[:] = sol[off : off + n_k]

    # Lockstep groups from the correlation of instance totals (sums recovered from the gram).
    tot = np.zeros((lay.size, n_v))
    for v in range(n_v):
        tot[lay.feat(v), v] = 1.0
    second = tot.T @ gram @ tot / max(n, 1.0)
    mean = tot.T @ gram[:, 0] / max(n, 1.0)
    cov = second - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    ok = sd > 1e-6
    corr = np.zeros((n_v, n_v))
    corr[np.ix_(ok, ok)] = cov[np.ix_(ok, ok)] / np.outer(sd[ok], sd[ok])
    np.fill_diagonal(corr, 0.0)
    same_owner = lay.owner[:, None] == lay.owner[None, :]
    max_corr = float(np.max(np.where(same_owner, -1.0, corr))) if n_v > 1 else 0.0
    parent = list(range(n_v))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a in live_v.tolist():
        for b in live_v.tolist():
            if a < b and not same_owner[a, b] and corr[a, b] > lockstep_corr:
                parent[find(a)] = find(b)
    grouped: dict[int, list[int]] = {}
    for v in live_v.tolist():
        grouped.setdefault(find(v), []).append(v)
    groups = list(grouped.values())

    t_full = design(groups)
    gf = t_full.T @ gram @ t_full
    a_mat, rhs = gf[:-1, :-1].copy(), gf[:-1, -1].copy()
    if shrink > 0:
        for gi, g in enumerate(groups):
            sl = slice(off + gi * n_k, off + (gi + 1) * n_k)
            lam = shrink * (np.diag(a_mat[sl, sl]) + 1e-9)
            a_mat[sl, sl] += np.diag(lam)
            rhs[sl] += lam * center[g].mean(axis=0)
    lb, ub = bounds(len(groups))
    coef = _bounded_normal_solve(a_mat, rhs, lb, ub) if lb.size else np.zeros(0)
    intercept = idle if fixed else float(coef[0]) if coef.size else 0.0
    beta = np.zeros((n_v, n_k))
    for gi, g in enumerate(groups):
        beta[g] = coef[off + gi * n_k : off + (gi + 1) * n_k]
    gamma = float(coef[-1]) if lay.contention and coef.size else 0.0

    # Condition number of the column-scaled (unpenalised) design.
    raw = gf[:-1, :-1]
    d = np.sqrt(np.clip(np.diag(raw), 0.0, None))
    live = d > 1e-9
    if live.any():
        xs = raw[np.ix_(live, live)] / np.outer(d[live], d[live])
        eig = np.linalg.eigvalsh(xs)
        cond = float(np.sqrt(eig[-1] / eig[0])) if eig[0] > 0 else float("inf")
    else:
        cond = float("inf")
    return WindowFit(
        intercept_w=intercept,
        beta=beta,
        condition=cond,
        max_corr=max_corr,
        lockstep=tuple(tuple(g) for g in groups if len(g) > 1),
        contention_w=gamma,
    )


def _design_rows(
    features: FloatArray, contention: FloatArray | None, power_w: FloatArray
) -> FloatArray:
    """Rows ``[1, features (N*K), c?, y]`` of the regression, (T, D)."""
    n_t = features.shape[0]
    parts = [np.ones((n_t, 1)), features.reshape(n_t, -1)]
    if contention is not None:
        parts.append(contention[:, None])
    parts.append(power_w[:, None])
    return np.concatenate(parts, axis=1)


def fit_window(
    power_w: FloatArray,
    features: FloatArray,
    *,
    idle_power_w: float | None,
    shrink: float,
    lockstep_corr: float,
    traffic: FloatArray | None = None,
) -> WindowFit:
    """Fit P = b0 + sum_i sum_k beta_ik u_ik (+ gamma (sum_i traffic_i)^2) with beta >= 0.

    Coefficients are shrunk toward a pooled fit (all instances sharing one vector); instances
    moving in lockstep share one vector.

    Args:
        power_w: (T,) board power.
        features: (T, N, K) whole-GPU features.
        idle_power_w: Known static power; when given the intercept is fixed to it.
        shrink: Relative ridge strength toward the pooled coefficients.
        lockstep_corr: Correlation above which instances share coefficients.
        traffic: (T, N) memory traffic per instance in whole-GPU units; adds the shared
            contention term when given.

    Returns:
        The fitted coefficients and diagnostics.
    """
    _n_t, n_i, n_k = features.shape
    c = None if traffic is None else traffic.sum(axis=1) ** 2
    z = _design_rows(features, c, power_w)
    lay = _Layout(n_i, n_k, c is not None, np.arange(n_i))
    return _solve_stats(
        z.T @ z,
        lay,
        p_min=float(np.min(power_w)),
        idle_power_w=idle_power_w,
        shrink=shrink,
        lockstep_corr=lockstep_corr,
    )


def contention_shares(gamma: float, traffic: FloatArray) -> FloatArray:
    """Split ``gamma * (sum traffic)^2`` among instances in proportion to their traffic.

    For a cost that depends only on the total, this is the Aumann-Shapley share: each unit of
    traffic pays the average cost of a unit, whoever sent it.

    Args:
        gamma: Watts per unit of (total traffic)^2.
        traffic: (T, N) traffic per instance.

    Returns:
        (T, N) watts per instance.
    """
    total = traffic.sum(axis=1, keepdims=True)
    return np.asarray(gamma * total * traffic)


def online_fit(
    gpu: GpuTelemetry,
    inputs: ModelInputs,
    idle_power_w: float | None,
    config: OnlineConfig | None = None,
) -> MethodOutput:
    """L3: sliding-window non-negative regression on the board total, per instance.

    Each ``step_s`` block uses coefficients fitted on the window of blocks centred on it (batch
    attribution may look ahead; the live service uses trailing windows). The regression works
    on per-block sufficient statistics, so a day of 1 Hz data costs one pass over the samples
    plus one small solve per step.
    """
    cfg = config or OnlineConfig()
    source = "given"
    if idle_power_w is None:
        idle_power_w = settled_idle_power(gpu, inputs, min_samples=cfg.idle_min_samples)
        source = "all-idle median" if idle_power_w is not None else "online intercept"
    t = gpu.time_s
    n_t = t.size
    n_i = len(gpu.instances)
    dt = float(np.median(np.diff(t))) if n_t > 1 else 1.0
    feats = inputs.features
    n_k = feats.shape[2]

    # Workload regimes: each (instance, regime) gets its own coefficient block.
    if cfg.regimes:
        labels = detect_regimes(
            inputs,
            min_busy=max(round(cfg.regime_min_s / dt), 1),
            min_shift=cfg.regime_min_shift,
            max_regimes=cfg.max_regimes,
        )
    else:
        labels = np.zeros((n_t, n_i), dtype=np.intp)
    owner_list: list[int] = []
    vfeats: list[FloatArray] = []
    for i in range(n_i):
        for r in range(int(labels[:, i].max()) + 1 if n_t else 1):
            owner_list.append(i)
            vfeats.append(feats[:, i, :] * (labels[:, i] == r)[:, None])
    owner = np.array(owner_list, dtype=np.intp)
    ufeat = np.stack(vfeats, axis=1)  # (T, V, K)
    traffic = feats[:, :, 1]

    # Line activity up with the sensor: delay and first-order averaging.
    prior = np.array([PRIOR_W_PER_UNIT[f] for f in MODEL_FEATURES])
    proxy = feats.sum(axis=1) @ prior
    lag, tau = estimate_sensor(
        gpu.board_power_w,
        proxy,
        round(cfg.max_lag_s / dt),
        tuple(x / dt for x in cfg.sensor_taus_s),
    )
    ufeat = _shift(sensor_filter(ufeat, tau), lag)
    traffic = _shift(sensor_filter(traffic, tau), lag)
    contention = None
    if cfg.contention:
        contention = _shift(sensor_filter(feats[:, :, 1].sum(axis=1) ** 2, tau), lag)

    lay = _Layout(owner.size, n_k, contention is not None, owner)
    step = max(round(cfg.step_s / dt), 1)
    n_b = -(-n_t // step)
    pad = n_b * step - n_t
    pb = np.concatenate([gpu.board_power_w, np.full(pad, np.inf)]).reshape(n_b, step)
    p_min_b = pb.min(axis=1)
    win_b = max(round(cfg.window_s / (step * dt)), 1)
    x_rows = _design_rows(ufeat, contention, np.zeros(n_t))[:, :-1]
    x_blocks = np.concatenate([x_rows, np.zeros((pad, x_rows.shape[1]))]).reshape(n_b, step, -1)
    # Block sums of x x' do not depend on the target: computed once for every pass.
    gram_xx = np.einsum("bti,btj->bij", x_blocks, x_blocks)

    def fit_pass(
        target: FloatArray, idle_b: FloatArray | None, keep: NDArray[np.bool_] | None
    ) -> tuple[list[WindowFit], FloatArray, FloatArray]:
        yb = np.concatenate([target, np.zeros(pad)]).reshape(n_b, step)
        d = gram_xx.shape[1] + 1
        grams = np.zeros((n_b, d, d))
        xb = x_blocks
        if keep is None:
            grams[:, :-1, :-1] = gram_xx
        else:
            kb = np.concatenate([keep, np.zeros(pad, dtype=bool)]).reshape(n_b, step)
            xb = x_blocks * kb[:, :, None]
            yb = yb * kb
            grams[:, :-1, :-1] = np.einsum("bti,btj->bij", xb, xb)
        xy = np.einsum("bti,bt->bi", xb, yb)
        grams[:, :-1, -1] = xy
        grams[:, -1, :-1] = xy
        grams[:, -1, -1] = np.einsum("bt,bt->b", yb, yb)
        cum = np.concatenate([np.zeros((1, d, d)), np.cumsum(grams, axis=0)])
        fits: list[WindowFit] = []
        pred = np.zeros((n_t, n_i))
        static = np.zeros(n_t)
        center = None
        if cfg.center == "run":
            whole = _solve_stats(
                cum[-1],
                lay,
                p_min=float(p_min_b.min()),
                idle_power_w=None if idle_b is None else float(np.median(idle_b)),
                shrink=0.0,
                lockstep_corr=cfg.lockstep_corr,
            )
            center = whole.beta
        for b in range(n_b):
            lo = max(0, min(b - win_b // 2, n_b - win_b))
            hi = min(n_b, lo + win_b)
            fit = _solve_stats(
                cum[hi] - cum[lo],
                lay,
                p_min=float(p_min_b[lo:hi].min()),
                idle_power_w=None if idle_b is None else float(idle_b[b]),
                shrink=cfg.shrink,
                lockstep_corr=cfg.lockstep_corr,
                center=center,
            )
            fits.append(fit)
            start, stop = b * step, min((b + 1) * step, n_t)
            pv = np.einsum("tvk,vk->tv", ufeat[start:stop], fit.beta)
            pi = np.zeros((stop - start, n_i))
            for v in range(owner.size):
                pi[:, owner[v]] += pv[:, v]
            if fit.contention_w > 0:
                pi += contention_shares(fit.contention_w, traffic[start:stop])
            pred[start:stop] = pi
            static[start:stop] = fit.intercept_w
        return fits, pred, static

    idle_b = None if idle_power_w is None else np.full(n_b, idle_power_w)
    fits, pred, static = fit_pass(gpu.board_power_w, idle_b, None)
    # Power cap: DVFS compresses every partition by one factor when demand is high, so samples
    # near the board's power ceiling say little about each instance's demand. When the busy
    # samples pile up under a ceiling, refit on the samples whose *modelled* demand is well
    # below it (selection on the model, not on the measured power, so no truncation bias);
    # the engine still reconciles every sample to the measured power.
    cap_passes = 0
    ceiling = 0.0
    if cfg.cap_knee < 1.0:
        dyn_meas = gpu.board_power_w - static
        busy_any = inputs.active.any(axis=1)
        ceiling = float(np.quantile(dyn_meas, 0.995))
        near = dyn_meas > (1.0 - cfg.cap_band) * ceiling
        if ceiling > 0 and busy_any.any() and float(near[busy_any].mean()) >= cfg.cap_detect:
            for _ in range(2):
                keep = pred.sum(axis=1) < cfg.cap_knee * ceiling
                if float(keep[busy_any].mean()) < 0.2:
                    break
                fits, pred, static = fit_pass(gpu.board_power_w, idle_b, keep)
                cap_passes += 1
    windows = [
        {
            "t_start_s": float(t[b * step]),
            "t_end_s": float(t[min((b + 1) * step, n_t) - 1]),
            "intercept_w": round(fit.intercept_w, 3),
            "contention_w": round(fit.contention_w, 3),
            "condition": round(fit.condition, 2) if np.isfinite(fit.condition) else None,
            "max_instance_corr": round(fit.max_corr, 4),
            "lockstep_groups": [
                sorted({gpu.instances[int(owner[v])].gpu_instance_id for v in g})
                for g in fit.lockstep
            ],
        }
        for b, fit in enumerate(fits)
    ]
    regimes = {
        inst.gpu_instance_id: int(labels[:, i].max()) + 1 if n_t else 1
        for i, inst in enumerate(gpu.instances)
    }
    switches = {
        inst.gpu_instance_id: [float(t[k + 1]) for k in np.flatnonzero(np.diff(labels[:, i]))]
        for i, inst in enumerate(gpu.instances)
        if n_t and labels[:, i].max() > 0
    }
    return MethodOutput(
        weights=pred,
        static_w=static,
        static_source=source,
        predicted_w=pred,
        diagnostics={
            "lag_s": lag * dt,
            "sensor_tau_s": tau * dt,
            "regimes": regimes,
            "regime_changes_s": switches,
            "cap_passes": cap_passes,
            "power_ceiling_w": round(ceiling, 2) if cap_passes else None,
            "windows": windows,
        },
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
