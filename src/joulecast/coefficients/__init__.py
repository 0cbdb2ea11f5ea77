"""Run-time coefficients of the time and power models.

The types (:class:`GpuCoefficients`), the files shipped in ``data/`` (fitted coefficients per
calibrated part, DVFS curves, the Hopper HBM energy per byte) and their transfer to parts without
measurements by physics. Fitting them is :mod:`joulecast.calibration`'s job; nothing here imports
it.
"""

from __future__ import annotations

from joulecast.coefficients.host import Host, host_from_file, host_ids, load_host
from joulecast.coefficients.params import (
    GpuCoefficients,
    PowerParams,
    TimeParams,
    read_coefficients,
    shipped_coefficients,
)
from joulecast.coefficients.transfer import coefficients_for_gpu as coefficients_for

__all__ = [
    "GpuCoefficients",
    "Host",
    "PowerParams",
    "TimeParams",
    "coefficients_for",
    "host_from_file",
    "host_ids",
    "load_host",
    "read_coefficients",
    "shipped_coefficients",
]
