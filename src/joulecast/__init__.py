"""joulecast: forecast time, power and energy of AI workloads on GPUs, without a GPU.

The flat public API::

    from joulecast import estimate, sweep, load_gpu, load_energaizer
    est = estimate(load_energaizer("bert.json"), "a100-pcie-40gb", sm_clock_mhz=900)
    print(est.time_ms, est.avg_power_w, est.energy_j)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "estimate": "joulecast.estimator",
    "Estimate": "joulecast.estimator",
    "sweep": "joulecast.sweeper",
    "SweepPoint": "joulecast.sweeper",
    "GPUSpec": "joulecast.hardware.spec",
    "load_gpu": "joulecast.hardware.spec",
    "gpu_from_file": "joulecast.hardware.spec",
    "gpu_ids": "joulecast.hardware.spec",
    "load_energaizer": "joulecast.workload.energaizer",
    "Workload": "joulecast.workload.ir",
    "Calibration": "joulecast.calibration.fit",
    "JoulecastError": "joulecast.errors",
}

if TYPE_CHECKING:
    from joulecast.calibration.fit import Calibration
    from joulecast.errors import JoulecastError
    from joulecast.estimator import Estimate, estimate
    from joulecast.hardware.spec import GPUSpec, gpu_from_file, gpu_ids, load_gpu
    from joulecast.sweeper import SweepPoint, sweep
    from joulecast.workload.energaizer import load_energaizer
    from joulecast.workload.ir import Workload

__all__ = [
    "Calibration",
    "Estimate",
    "GPUSpec",
    "JoulecastError",
    "SweepPoint",
    "Workload",
    "estimate",
    "gpu_from_file",
    "gpu_ids",
    "load_energaizer",
    "load_gpu",
    "sweep",
]


def __getattr__(name: str) -> Any:
    # Lazy: `import joulecast` stays cheap; scipy and friends load on first use.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'joulecast' has no attribute {name!r}")
