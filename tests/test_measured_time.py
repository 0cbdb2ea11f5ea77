"""The power-model-alone diagnostic on a synthetic measurement (no reference data needed)."""

from dataclasses import replace

import pytest

from joulecast.calibration.data import Measurement
from joulecast.calibration.measured_time import power_error_at_measured_time
from joulecast.coefficients import coefficients_for
from joulecast.estimator import estimate
from joulecast.hardware import load_gpu


def _row(time_s: float, energy_j: float) -> Measurement:
    return Measurement(
        set_name="synthetic",
        gpu="a100-pcie-40gb",
        workload="gpt2 b8 s128",
        model="gpt2",
        precision="bf16",
        batch=8,
        seq=128,
        eager_tag=False,
        requested_clock_mhz=900.0,
        measured_clock_mhz=900.0,
        time_s=time_s,
        energy_j=energy_j,
        iterations=1000,
        kernel_list=None,
    )


def test_zero_error_when_the_measurement_is_the_estimate() -> None:
    row = _row(1.0, 1.0)
    est = estimate(row.load_workload(), "a100-pcie-40gb", sm_clock_mhz=900.0, detail=False)
    row = replace(row, time_s=est.time_s, energy_j=est.energy_j)
    coeffs = coefficients_for(load_gpu("a100-pcie-40gb"))
    assert power_error_at_measured_time(row, coeffs) == pytest.approx(0.0, abs=1e-9)


def test_a_longer_measured_pass_at_equal_energy_reads_as_over_predicted_power() -> None:
    """Twice the measured time at the same energy: half the measured power, while the priced
    power keeps the dynamic energy and adds idle power over the longer pass."""
    coeffs = coefficients_for(load_gpu("a100-pcie-40gb"))
    row = _row(1.0, 1.0)
    est = estimate(row.load_workload(), "a100-pcie-40gb", sm_clock_mhz=900.0, detail=False)
    row = replace(row, time_s=2.0 * est.time_s, energy_j=est.energy_j)
    expected = est.idle_power_w * est.time_s / est.energy_j
    assert power_error_at_measured_time(row, coeffs) == pytest.approx(expected, rel=1e-6)
