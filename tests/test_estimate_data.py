"""Every shipped kernel list estimates to physically plausible numbers on three GPUs."""

from pathlib import Path

import pytest

from joulecast.estimator import estimate
from joulecast.hardware import load_gpu
from joulecast.workload.energaizer import load_energaizer
from joulecast.workload.ir import Conv2d, Gemm


@pytest.mark.parametrize("gpu", ["a100-pcie-40gb", "a10", "h100-sxm"])
def test_all_workloads_plausible(data_dir: Path, gpu: str) -> None:
    spec = load_gpu(gpu)
    for f in sorted((data_dir / "energaizer" / "workloads" / "all").glob("*.json")):
        w = load_energaizer(f)
        e = estimate(w, spec, detail=False)
        math_s = sum(
            op.flops
            / (
                spec.tensor_flops_per_s(op.precision, e.sm_clock_mhz)
                if op.tensor_core
                else spec.cuda_flops_per_s(op.precision, e.sm_clock_mhz)
            )
            for op in w.ops
            if isinstance(op, Gemm | Conv2d)
        )
        roofline = max(math_s, e.dram_bytes / spec.memory_bandwidth_b_s)
        assert e.time_s > roofline, f.name
        assert e.idle_power_w < e.avg_power_w <= e.power_cap_w + 1e-6, f.name
