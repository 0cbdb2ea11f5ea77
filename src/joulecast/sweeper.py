"""Sweeps over SM clocks, power caps and GPUs: the time–energy trade-off of a workload.

Each (workload, GPU) pair is compiled once and evaluated at every lockable clock up to the highest
requested one in one vectorised call. A power cap lowers each requested clock to the highest
supported clock whose power fits, exactly as :func:`joulecast.estimate` does for one point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from joulecast.coefficients import coefficients_for
from joulecast.coefficients.host import Host, resolve_host
from joulecast.dvfs import DvfsCurve, dvfs_curve, regulated_power_w
from joulecast.errors import ClockError, JoulecastError
from joulecast.estimator import Evaluation, evaluate, host_for
from joulecast.hardware.spec import GPUSpec, resolve_gpu
from joulecast.timeline import compile_workload
from joulecast.workload.ir import Workload


class SweepError(JoulecastError, ValueError):
    """A sweep that cannot run: nothing to sweep, or an impossible slowdown budget."""


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One operating point of a workload.

    Attributes:
        workload: workload name.
        gpu: GPU id.
        requested_clock_mhz: the SM clock asked for.
        power_cap_w: the board power limit.
        sm_clock_mhz: the clock the pass runs at (below the requested one when throttled).
        time_ms: wall time of one pass.
        avg_power_w: average board power over the pass.
        energy_j: board energy of one pass.
        edp_j_s: energy-delay product, ``energy_j`` × time in seconds.
        throttled: the pass would exceed the cap at the requested clock.
        energy_optimal: the lowest-energy point of its (workload, GPU, power cap) group.
        fastest_within_budget: the lowest-energy point of its group whose time is at most
            ``max_slowdown`` × the group's fastest time.
    """

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
        """Flat JSON/CSV-ready dict, keys in column order."""
        return asdict(self)


def sweep(
    workloads: Sequence[Workload],
    gpus: Sequence[str | GPUSpec],
    *,
    clocks_mhz: Sequence[float] | None = None,
    power_caps_w: Sequence[float] | None = None,
    max_slowdown: float = 1.1,
    cuda_graphs: bool = False,
    host: str | Host | None = None,
) -> list[SweepPoint]:
    """Evaluate every workload × GPU × power cap × clock.

    Args:
        workloads: the passes to sweep.
        gpus: GPU ids, spec files or specs.
        clocks_mhz: requested SM clocks (sorted, duplicates dropped); default: every supported
            clock of each part.
        power_caps_w: power limits (duplicates dropped); default: each part's default limit.
        max_slowdown: budget for ``fastest_within_budget``: the lowest-energy point whose time is
            at most this factor above the fastest point of the same workload, GPU and cap.
        cuda_graphs: the passes are replayed as CUDA graphs (no host dispatch time per op).
        host: the machine issuing the kernels (a host, shipped id or file); default: each
            part's default host.

    Returns:
        One :class:`SweepPoint` per combination, ordered by GPU, workload, cap and clock, with
        exactly one energy-optimal and one fastest-within-budget point per (workload, GPU, cap).

    Raises:
        SweepError: nothing to sweep (no workload, GPU, clock or cap), or ``max_slowdown < 1``.
        ClockError: a clock the part does not support, a cap outside [idle, max limit], or a cap
            the workload exceeds even at the lowest clock.
    """
    if not max_slowdown >= 1.0:
        raise SweepError(
            f"max slowdown must be at least 1 (got {max_slowdown:g}): it bounds the time of the "
            "chosen point relative to the fastest one"
        )
    for what, items in (("workload", workloads), ("GPU", gpus)):
        if len(items) == 0:
            raise SweepError(f"nothing to sweep: no {what} given")
    for what, values in (("SM clocks", clocks_mhz), ("power caps", power_caps_w)):
        if values is not None and len(values) == 0:
            raise SweepError(f"nothing to sweep: the list of {what} is empty")

    points: list[SweepPoint] = []
    for gpu in gpus:
        spec = resolve_gpu(gpu)
        requested = _requested_clocks(spec, clocks_mhz)
        # Position of each requested clock on the lockable grid (check_clock guarantees it).
        pos = np.rint((requested - spec.min_clock_mhz) / spec.clock_step_mhz).astype(np.intp)
        grid = np.asarray(spec.supported_clocks_mhz()[: int(pos[-1]) + 1], dtype=np.float64)
        coeffs = coefficients_for(spec)
        machine = resolve_host(host) if host is not None else host_for(spec)
        if cuda_graphs:
            machine = machine.with_cuda_graphs()
        curve = dvfs_curve(spec)
        caps = _power_caps(spec, power_caps_w, requested, curve, coeffs.power.idle_offset_w)
        for wl in workloads:
            ev = evaluate(compile_workload(wl, spec), coeffs, grid, curve, machine)
            for cap in caps:
                points += _group(wl.name, spec, ev, requested, pos, cap, max_slowdown)
    return points


def _requested_clocks(spec: GPUSpec, clocks_mhz: Sequence[float] | None) -> NDArray[np.float64]:
    if clocks_mhz is None:
        return np.asarray(spec.supported_clocks_mhz(), dtype=np.float64)
    return np.unique(np.array([spec.check_clock(float(c)) for c in clocks_mhz], dtype=np.float64))


def _power_caps(
    spec: GPUSpec,
    power_caps_w: Sequence[float] | None,
    requested: NDArray[np.float64],
    curve: DvfsCurve,
    idle_offset_w: float,
) -> list[float]:
    if power_caps_w is None:
        return [spec.default_power_limit_w]
    # The same idle floor estimate() applies, taken at the most demanding requested clock, so a
    # cap the sweep accepts is accepted by estimate() at every point.
    floor = float(
        np.minimum(
            curve.idle_power(requested) + idle_offset_w, curve.idle_power(spec.min_clock_mhz)
        ).max()
    )
    return sorted({spec.check_power_cap(float(c), floor) for c in power_caps_w})


def _group(
    workload: str,
    spec: GPUSpec,
    ev: Evaluation,
    requested: NDArray[np.float64],
    pos: NDArray[np.intp],
    cap: float,
    max_slowdown: float,
) -> list[SweepPoint]:
    """The points of one (workload, GPU, cap) with its two optima marked."""
    power = ev.power_w
    fits = power <= regulated_power_w(cap)
    if not fits[0]:
        raise ClockError(
            f"power cap {cap:g} W is below what {workload} draws on {spec.id} even at the lowest "
            f"clock ({float(power[0]):.0f} W)"
        )
    # Highest fitting grid index at or below each grid index (index 0 fits).
    last_fit = np.maximum.accumulate(np.where(fits, np.arange(fits.size), 0))
    idx = last_fit[pos]
    time_s = ev.time_s[idx]
    energy_j = ev.energy_j[idx]
    order = np.arange(idx.size)
    # Ties (requested clocks throttled to the same clock) go to the faster, then lower request.
    e_opt = int(np.lexsort((order, time_s, energy_j))[0])
    within = np.flatnonzero(time_s <= time_s.min() * max_slowdown)
    best = int(within[np.lexsort((within, time_s[within], energy_j[within]))[0]])
    return [
        SweepPoint(
            workload,
            spec.id,
            f_req,
            cap,
            f_eff,
            t * 1e3,
            e / t,
            e,
            e * t,
            thr,
            i == e_opt,
            i == best,
        )
        for i, (f_req, f_eff, t, e, thr) in enumerate(
            zip(
                requested.tolist(),
                ev.clock_mhz[idx].tolist(),
                time_s.tolist(),
                energy_j.tolist(),
                (idx < pos).tolist(),
                strict=True,
            )
        )
    ]
