"""Measure a user's host from one pass: the speed factor that makes the forecast time match.

A launch-bound eager pass (GPT-2 at batch 1, 128 tokens: hundreds of tiny kernels, each far
shorter than the Python and dispatcher time that issues it) runs at the host's pace, so its
measured time pins the host's speed. The forecast time of a pass grows monotonically with the
host's per-op and per-pass costs; :func:`fit_host` scales a base host's costs by one factor and
solves, by bisection, for the factor whose forecast equals the measurement. The GPU side
(kernel times, clocks) stays the part's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.coefficients.host import Host, resolve_host
from joulecast.errors import JoulecastError
from joulecast.estimator import estimate, host_for
from joulecast.hardware.spec import GPUSpec, resolve_gpu
from joulecast.workload.ir import Workload

# Host slowness multipliers searched (relative to the base host): 1000x faster to 1000x slower.
_K_MIN, _K_MAX = 1e-3, 1e3
# Below this share of the pass's time spent on the host's account, the measurement says little
# about the host.
MIN_HOST_SHARE = 0.3


class HostFitError(JoulecastError, ValueError):
    """A measurement no host speed can explain."""


@dataclass(frozen=True)
class HostFit:
    """A fitted host and how well the measurement determines it.

    Attributes:
        host: the fitted host (the base host's costs divided by ``speed_factor``).
        speed_factor: how many times faster than the base host.
        measured_time_s: the measured pass time.
        gpu_only_time_s: the forecast time with a host that costs nothing.
        host_share: d(log time)/d(log host cost) at the solution: near 1 for a launch-bound
            pass (the host sets the time), near 0 for a GPU-bound one.
        warning: set when the pass is not launch-bound enough to determine the host well.
    """

    host: Host
    speed_factor: float
    measured_time_s: float
    gpu_only_time_s: float
    host_share: float
    warning: str | None


def fit_host(
    workload: Workload,
    gpu: str | GPUSpec,
    measured_time_s: float,
    *,
    sm_clock_mhz: float | None = None,
    base: str | Host | None = None,
    new_id: str = "my-host",
) -> HostFit:
    """Fit the host's speed factor from one measured eager pass.

    Args:
        workload: the pass that was measured (eager PyTorch, synchronised).
        gpu: the part it ran on.
        measured_time_s: its measured wall time per pass.
        sm_clock_mhz: the SM clock it ran at (default: the part's maximum).
        base: the host whose costs are scaled (default: the part's default host).
        new_id: id of the fitted host.

    Raises:
        HostFitError: a measurement faster than the GPU alone can run the pass, or slower than
            any host in the searched range explains.
    """
    if not measured_time_s > 0:
        raise HostFitError(f"the measured time must be positive (got {measured_time_s:g} s)")
    spec = resolve_gpu(gpu)
    start = resolve_host(base) if base is not None else host_for(spec)

    def time_s(k: float) -> float:
        host = Host(
            id=new_id,
            description="",
            host_op_s=start.host_op_s * k,
            host_module_op_s=start.host_module_op_s * k,
            pass_overhead_s=start.pass_overhead_s * k,
        )
        return estimate(workload, spec, sm_clock_mhz=sm_clock_mhz, host=host, detail=False).time_s

    gpu_only = time_s(0.0)
    if measured_time_s < gpu_only:
        raise HostFitError(
            f"the measured {measured_time_s * 1e3:.3g} ms is faster than the GPU alone can run "
            f"this pass on {spec.id}: {gpu_only * 1e3:.3g} ms (check the clock, the workload and "
            "the GPU)"
        )
    if time_s(_K_MAX) < measured_time_s:
        raise HostFitError(
            f"the measured {measured_time_s * 1e3:.3g} ms is slower than a host "
            f"{_K_MAX:g}x slower than {start.id} explains; is the measurement synchronised and "
            "per pass?"
        )
    lo, hi = _K_MIN, _K_MAX
    if time_s(lo) < measured_time_s:
        for _ in range(80):  # bisection in log space: 1e-9 relative in ~45 steps
            mid = (lo * hi) ** 0.5
            if time_s(mid) < measured_time_s:
                lo = mid
            else:
                hi = mid
            if hi <= lo * (1 + 1e-9):
                break
    k = hi if time_s(lo) < measured_time_s else lo
    t_k = time_s(k)
    share = (time_s(k * 1.01) - t_k) / (0.01 * t_k)
    warning = None
    if share < MIN_HOST_SHARE:
        warning = (
            f"this pass is not launch-bound (the host accounts for {share:.0%} of its time): the "
            "host speed is poorly determined; measure a launch-bound pass such as GPT-2 at batch "
            "1 and 128 tokens"
        )
    source = (
        f"joulecast host fit: {workload.name} on {spec.id}"
        f"{f' at {sm_clock_mhz:g} MHz' if sm_clock_mhz else ''}, measured "
        f"{measured_time_s * 1e3:.4g} ms per pass"
    )
    host = start.scaled(1.0 / k, new_id, source)
    return HostFit(host, 1.0 / k, measured_time_s, gpu_only, share, warning)
