"""Non-negative window regression of board power on per-instance features.

The fit works on sufficient statistics (``Z'Z`` of the window's rows), so the online method can
refit every step from block sums and the live service can fit a trailing window directly
(:func:`fit_window`). A shared memory-system contention term is split by traffic
(:func:`contention_shares`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import lsq_linear

from joulecast.mig.frame import FloatArray


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
