"""Stacked pass times (the calibration's residual) against the per-row timeline, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from joulecast.calibration.stacked import StackedPasses
from joulecast.coefficients.host import Host
from joulecast.coefficients.params import TimeParams
from joulecast.hardware.spec import load_gpu
from joulecast.models.build import build_workload
from joulecast.timeline import CompiledWorkload, compile_workload, kernel_times, pass_times


def _host(op_s: float, module_s: float, pass_s: float) -> Host:
    return Host(
        id="h", description="", host_op_s=op_s, host_module_op_s=module_s, pass_overhead_s=pass_s
    )


DEFAULT_HOST = _host(1.5e-5, 3e-5, 1e-4)
PARAMS = [
    (TimeParams(), DEFAULT_HOST),
    (TimeParams(eta_tensor=0.93, eta_cuda=0.11, eta_dram=0.71, overlap_p=1.43), DEFAULT_HOST),
    (TimeParams(overlap_p=1.0), _host(2e-5, 6e-5, 3e-3)),
    (TimeParams(eta_dram=0.2, kernel_latency_cycles=0.0, overlap_p=2.0), DEFAULT_HOST),
    (TimeParams(overlap_p=7.5), _host(0.0, 0.0, 0.0)),
]


def _rows(gpu: str) -> tuple[list[CompiledWorkload], list[float]]:
    spec = load_gpu(gpu)
    configs = [("gpt2", 1, 128), ("gpt2", 8, 512), ("bert-large-uncased", 4, 128)]
    cws = [
        compile_workload(
            build_workload(m, batch=b, seq=s, precision="bf16", attention="eager", lm_head=False),
            spec,
        )
        for m, b, s in configs
    ]
    # The same workload at several clocks, and one row twice: groups, shared and repeated columns.
    return [*cws, cws[0], cws[0], cws[1]], [900.0, 900.0, 1410.0, 510.0, 900.0, 1200.0]


def _per_row(
    cws: list[CompiledWorkload], clocks: list[float], tp: TimeParams, host: Host
) -> np.ndarray:
    return np.array(
        [
            pass_times(cw, host, kernel_times(cw, tp, np.array([f]))).time_s[0]
            for cw, f in zip(cws, clocks, strict=True)
        ]
    )


@pytest.mark.parametrize("gpu", ["a100-pcie-40gb", "a10"])
def test_stacked_time_equals_the_timeline(gpu: str) -> None:
    cws, clocks = _rows(gpu)
    stack = StackedPasses(cws, clocks)
    assert stack.n_rows == len(cws)
    host_step = (PARAMS[1][0], _host(3e-5, 6e-5, 1e-3))
    # Repeated kernel parameters go through the kept kernel times.
    for tp, host in [*PARAMS, host_step, PARAMS[1], PARAMS[0]]:
        assert np.array_equal(stack.time_s(tp, host), _per_row(cws, clocks, tp, host))


def test_stacked_rejects_mixed_gpus() -> None:
    a100, _ = _rows("a100-pcie-40gb")
    a10, _ = _rows("a10")
    with pytest.raises(ValueError, match="one GPU"):
        StackedPasses([a100[0], a10[0]], [900.0, 900.0])
    with pytest.raises(ValueError, match="no rows"):
        StackedPasses([], [])
