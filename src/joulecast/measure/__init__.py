"""Ground truth on the user's GPU: measured time, energy and average power (``joulecast measure``).

A measurement runs work back to back over a window of at least a few seconds and reads each GPU's
energy from NVML's cumulative counter (or integrates sampled power, labelled, where the part has
none), with a power/clock/temperature timeline sampled in the background. The layer sits above
the run-time path (it may call the estimator for a side-by-side forecast) and below calibration;
nothing at run time imports it. Method: docs/measure.md.

Modules:

* :mod:`.meter`: the device interface (:class:`GpuMeter`) and the time source (:class:`Clock`);
* :mod:`.nvml`: the NVML meter (pynvml imported there only); :mod:`.fake`: simulated GPUs,
  replayed traces, a fake clock and a simulated kernel bench;
* :mod:`.sampler`: the background timeline; :mod:`.settings`: clock locking, power limits and
  provenance; :mod:`.core`: :func:`measure` (a callable or a command);
* :mod:`.torch_model`, :mod:`.model_run`, :mod:`.records`: a model pass in PyTorch, its forecast,
  and the measurement-file row the calibration reads;
* :mod:`.kernels`, :mod:`.torch_kernels`, :mod:`.kernel_table`: the kernel collector and its CSV;
  :mod:`.plot`: the timeline PNG.

Example::

    from joulecast.measure import measure
    from joulecast.measure.nvml import NvmlMeter

    m = measure(step, NvmlMeter(), sync=torch.cuda.synchronize, warmup=3, min_window_s=5)
    print(m.time_per_iteration_s, m.energy_per_iteration_j, m.gpus[0].method)
"""

from __future__ import annotations

from joulecast.measure.core import COUNTER, INTEGRATED, GpuResult, Measurement, measure
from joulecast.measure.meter import (
    Clock,
    GpuMeter,
    MeasureError,
    NoPermissionError,
    NotSupportedError,
    RealClock,
)
from joulecast.measure.settings import Provenance, Settings

__all__ = [
    "COUNTER",
    "INTEGRATED",
    "Clock",
    "GpuMeter",
    "GpuResult",
    "MeasureError",
    "Measurement",
    "NoPermissionError",
    "NotSupportedError",
    "Provenance",
    "RealClock",
    "Settings",
    "measure",
]
