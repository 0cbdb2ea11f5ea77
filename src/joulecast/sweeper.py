"""Sweeps over SM clocks, power caps and GPUs: the time–energy trade-off of a workload.

Each (workload, GPU) pair is compiled once and evaluated at every clock in one vectorised call;
a power cap lowers each requested clock to the highest supported clock whose power fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from joulecast.estimator import coefficients_for, evaluate
from joulecast.hardware.spec import GPUSpec, resolve_gpu
from joulecast.timeline import compile_workload
from joulecast.workload.ir import Workload


@dataclass(frozen=True)
class SweepPoint:
    """One operating point of a workload."""

    workload: str
    gpu: str
    requested_clock_mhz: float
    power_cap_w: float
    sm_clock_mhz: float
    time_ms: float
    avg_power_w: float
    energy_j: float
    edp_j_s: float
    throttled: bool
    energy_optimal: bool = False
    fastest_within_budget: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clocks(spec: GPUSpec, clocks_mhz: Sequence[float] | None) -> np.ndarray:
    if clocks_mhz is None:
        return np.array(spec.supported_clocks_mhz())
    return np.array([spec.check_clock(float(c)) for c in clocks_mhz])


def sweep(
    workloads: Sequence[Workload],
    gpus: Sequence[str | GPUSpec],
    *,
    clocks_mhz: Sequence[float] | None = None,
    power_caps_w: Sequence[float] | None = None,
    max_slowdown: float = 1.1,
) -> list[SweepPoint]:
    """Evaluate every workload × GPU × clock × power cap.

    Args:
        workloads: the passes to sweep.
        gpus: GPU ids, spec files or specs.
        clocks_mhz: requested SM clocks (default: every supported clock of each part).
        power_caps_w: power limits (default: each part's default limit).
        max_slowdown: budget for ``fastest_within_budget``: the lowest-energy point whose time is
            at most this factor above the fastest point of the same workload and GPU.

    Returns:
        One :class:`SweepPoint` per combination, with the optima of each (workload, GPU) marked.
    """
    points: list[SweepPoint] = []
    for gpu in gpus:
        spec = resolve_gpu(gpu)
        coeffs = coefficients_for(spec)
        all_clocks = np.array(spec.supported_clocks_mhz())
        req = _clocks(spec, clocks_mhz)
        caps = (
            [spec.check_power_cap(c) for c in power_caps_w]
            if power_caps_w
            else [spec.default_power_limit_w]
        )
        for wl in workloads:
            ev = evaluate(compile_workload(wl, spec), coeffs, all_clocks)
            power = ev.power_w
            group: list[SweepPoint] = []
            for cap in caps:
                fits = power <= cap
                for f in req:
                    ok = np.flatnonzero(fits & (all_clocks <= f + 1e-9))
                    i = int(ok[-1]) if ok.size else 0
                    t, e = float(ev.time_s[i]), float(ev.energy_j[i])
                    group.append(
                        SweepPoint(
                            wl.name,
                            spec.id,
                            float(f),
                            float(cap),
                            float(all_clocks[i]),
                            t * 1e3,
                            e / t,
                            e,
                            e * t,
                            bool(all_clocks[i] < f - 1e-9),
                        )
                    )
            points += _mark(group, max_slowdown)
    return points


def _mark(group: list[SweepPoint], max_slowdown: float) -> list[SweepPoint]:
    if not group:
        return group
    e_opt = min(range(len(group)), key=lambda i: group[i].energy_j)
    t_min = min(p.time_ms for p in group)
    within = [i for i, p in enumerate(group) if p.time_ms <= t_min * max_slowdown]
    best = min(within, key=lambda i: group[i].energy_j)
    out = []
    for i, p in enumerate(group):
        d = p.to_dict()
        d["energy_optimal"] = i == e_opt
        d["fastest_within_budget"] = i == best
        out.append(SweepPoint(**d))
    return out
