"""Stacked pass times (the calibration's residual) against the per-row timeline, bit for bit."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from joulecast.calibration.stacked import StackedPasses
from joulecast.coefficients.params import TimeParams
from joulecast.hardware.spec import load_gpu
from joulecast.models.build import build_workload
from joulecast.timeline import CompiledWorkload, compile_workload, kernel_times, pass_times

PARAMS = [
    TimeParams(),
    TimeParams(eta_tensor=0.93, eta_cuda=0.11, eta_dram=0.71, overlap_p=1.43),
    TimeParams(host_op_s=2e-5, host_gemm_s=6e-5, pass_overhead_s=3e-3, overlap_p=1.0),
    TimeParams(eta_dram=0.2, kernel_latency_cycles=0.0, overlap_p=2.0),
    TimeParams(host_op_s=0.0, host_gemm_s=0.0, pass_overhead_s=0.0, overlap_p=7.5),
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


def _per_row(cws: list[CompiledWorkload], clocks: list[float], tp: TimeParams) -> np.ndarray:
    return np.array(
        [
            pass_times(cw, tp, kernel_times(cw, tp, np.array([f]))).time_s[0]
            for cw, f in zip(cws, clocks, strict=True)
        ]
    )


@pytest.mark.parametrize("gpu", ["a100-pcie-40gb", "a10"])
def test_stacked_time_equals_the_timeline(gpu: str) -> None:
    cws, clocks = _rows(gpu)
    stack = StackedPasses(cws, clocks)
    assert stack.n_rows == len(cws)
    host_step = msgspec.structs.replace(PARAMS[1], host_op_s=3e-5, pass_overhead_s=1e-3)
    # Repeated kernel parameters go through the kept kernel times.
    for tp in [*PARAMS, host_step, PARAMS[1], PARAMS[0]]:
        assert np.array_equal(stack.time_s(tp), _per_row(cws, clocks, tp))


def test_stacked_rejects_mixed_gpus() -> None:
    a100, _ = _rows("a100-pcie-40gb")
    a10, _ = _rows("a10")
    with pytest.raises(ValueError, match="one GPU"):
        StackedPasses([a100[0], a10[0]], [900.0, 900.0])
    with pytest.raises(ValueError, match="no rows"):
        StackedPasses([], [])
