"""L3 online method: sliding-window regression on the board total, with and without reconciliation.

Combines sensor alignment (:mod:`~joulecast.mig.methods.sensor`), workload regimes
(:mod:`~joulecast.mig.methods.regimes`) and the window regression
(:mod:`~joulecast.mig.methods.regression`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from joulecast.mig.frame import FloatArray, GpuTelemetry
from joulecast.mig.methods.base import (
    MODEL_FEATURES,
    PRIOR_W_PER_UNIT,
    MethodOutput,
    ModelInputs,
)
from joulecast.mig.methods.regimes import detect_regimes
from joulecast.mig.methods.regression import (
    WindowFit,
    _design_rows,
    _Layout,
    _solve_stats,
    contention_shares,
)
from joulecast.mig.methods.sensor import _shift, estimate_sensor, sensor_filter
from joulecast.mig.methods.static import settled_idle_power


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
