"""The power-cap search picks the clock a scan of the whole clock grid picks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joulecast.coefficients import coefficients_for
from joulecast.dvfs import dvfs_curve, regulated_power_w
from joulecast.errors import ClockError
from joulecast.estimator import estimate, evaluate
from joulecast.hardware.spec import load_gpu
from joulecast.timeline import compile_workload
from joulecast.workload.example import example_workload

WORKLOADS = [example_workload(batch=b, seq=s) for b, s in ((1, 128), (8, 512), (32, 512))]


@settings(max_examples=60, deadline=None)
@given(
    wl=st.sampled_from(WORKLOADS),
    gpu=st.sampled_from(["a100-pcie-40gb", "a10", "h100-sxm"]),
    cap_fraction=st.floats(0.0, 1.0),
)
def test_cap_search_matches_full_grid_scan(wl: object, gpu: str, cap_fraction: float) -> None:
    spec = load_gpu(gpu)
    cap = spec.min_power_limit_w + cap_fraction * (spec.max_power_limit_w - spec.min_power_limit_w)
    cw = compile_workload(wl, spec)  # type: ignore[arg-type]
    grid = np.array(spec.supported_clocks_mhz())
    full = evaluate(cw, coefficients_for(spec), grid, dvfs_curve(spec))
    fits = np.flatnonzero(full.power_w <= regulated_power_w(cap))
    if not fits.size:
        with pytest.raises(ClockError):
            estimate(wl, spec, power_cap_w=cap)  # type: ignore[arg-type]
        return
    est = estimate(wl, spec, power_cap_w=cap)  # type: ignore[arg-type]
    i = int(fits[-1])
    assert est.sm_clock_mhz == grid[i]
    assert est.time_s == full.time_s[i]
    assert est.energy_j == full.energy_j[i]
