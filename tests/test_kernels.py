import numpy as np
import pytest

from joulecast.calibration.params import GpuCoefficients, TimeParams
from joulecast.hardware import load_gpu
from joulecast.kernels import cost_of
from joulecast.timeline import compile_workload, kernel_times
from joulecast.workload.ir import Attention, Conv2d, Elementwise, Gemm, LayerNorm, Softmax, Workload

GPUS = ["a100-pcie-40gb", "a10", "h100-sxm", "b200"]
IDEAL = GpuCoefficients(
    gpu="x",
    ref_clock_mhz=1000,
    time=TimeParams(
        eta_tensor=1.0,
        eta_cuda=1.0,
        eta_dram=1.0,
        kernel_latency_cycles=0,
        host_op_s=0,
        pass_overhead_s=0,
    ),
)


def _time(op: Gemm | Attention | Softmax | Elementwise, gpu: str, clock: float) -> float:
    """Kernel time with ideal efficiencies and no launch overhead (no power cap involved)."""
    cw = compile_workload(Workload("one", (op,)), load_gpu(gpu))
    return float(kernel_times(cw, IDEAL.time, np.array([clock]))[0, 0])


@pytest.mark.parametrize("gpu", GPUS)
def test_huge_gemm_approaches_but_never_exceeds_peak(gpu: str) -> None:
    spec = load_gpu(gpu)
    op = Gemm(16384, 16384, 16384)
    t = _time(op, gpu, spec.spec_clock_mhz)
    achieved = op.flops / t
    peak = spec.tensor_flops_per_s(op.precision, spec.spec_clock_mhz)
    assert achieved <= peak
    assert achieved >= 0.7 * peak


@pytest.mark.parametrize("gpu", GPUS)
def test_gemm_time_grows_with_size(gpu: str) -> None:
    times = [_time(Gemm(m, 4096, 4096), gpu, 1000) for m in (1, 64, 512, 2048, 8192)]
    assert times == sorted(times)


@pytest.mark.parametrize("gpu", GPUS)
def test_bytes_at_least_compulsory(gpu: str) -> None:
    spec = load_gpu(gpu)
    for m, n, k in [(1, 4096, 4096), (4096, 4096, 4096), (128, 50257, 768), (7, 3, 5)]:
        c = cost_of(Gemm(m, n, k), spec)
        assert c.dram_bytes >= 2 * (m * k + k * n + m * n)
        assert c.l2_bytes >= c.dram_bytes * 0.99
    e = cost_of(Elementwise(10**6, "add", 2), spec)
    assert e.dram_bytes == 3 * 2 * 10**6


def test_memory_bound_kernel_respects_bandwidth() -> None:
    spec = load_gpu("h100-sxm")
    op = Elementwise(1 << 28, "add", 2)
    t = _time(op, "h100-sxm", 1830)
    assert op.bytes_moved / t <= spec.memory_bandwidth_b_s


def test_causal_attention_is_cheaper_than_full() -> None:
    full = Attention(8, 32, 4096, 4096, 128, causal=False)
    causal = Attention(8, 32, 4096, 4096, 128, causal=True)
    assert causal.flops == pytest.approx(full.flops / 2, rel=0.01)
    assert _time(causal, "h100-sxm", 1830) < _time(full, "h100-sxm", 1830)


def test_decode_attention_is_memory_bound() -> None:
    spec = load_gpu("h100-sxm")
    op = Attention(64, 32, 1, 8192, 128, kv_heads=8)
    c = cost_of(op, spec)
    kv = 64 * 8 * 8192 * 256 * 2
    assert c.dram_bytes >= kv
    t = _time(op, "h100-sxm", 1830)
    assert t >= kv / spec.memory_bandwidth_b_s


def test_lower_clock_is_slower_for_compute_bound() -> None:
    op = Gemm(8192, 8192, 8192)
    assert _time(op, "a100-pcie-40gb", 705) > 1.6 * _time(op, "a100-pcie-40gb", 1410)


def test_conv_and_rowwise_models() -> None:
    spec = load_gpu("a100-pcie-40gb")
    conv = cost_of(Conv2d(8, 64, 128, 56, 56, 3, padding=1), spec)
    assert conv.tensor_flops == pytest.approx(2 * 8 * 56 * 56 * 128 * 64 * 9)
    ln = cost_of(LayerNorm(4096, 1024), spec)
    sm = cost_of(Softmax(4096, 1024), spec)
    assert ln.dram_bytes >= 2 * 4096 * 1024 * 2
    assert sm.xu_ops >= 4096 * 1024
