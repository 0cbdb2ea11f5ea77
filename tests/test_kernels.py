import numpy as np
import pytest

from joulecast.coefficients.params import GpuCoefficients, TimeParams
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


def test_hopper_stream_k_leaves_no_idle_tail_wave() -> None:
    # 9 x 16 = 144 tiles of 128x256 on 132 SMs: whole-tile waves would idle most SMs in a second
    # wave; stream-K shares the K-loop iterations evenly (padding of M to the tile is still paid).
    spec = load_gpu("h100-sxm")
    m, n, k = 1025, 4096, 51200
    op = Gemm(m, n, k)
    c = cost_of(op, spec)
    per_sm_clk = spec.tensor_flops_per_s(op.precision, spec.spec_clock_mhz)
    per_sm_clk /= spec.sm_count * spec.spec_clock_mhz * 1e6
    ideal = 2.0 * m * n * k / (spec.sm_count * per_sm_clk)
    assert c.sm_fraction == pytest.approx(1.0)
    assert c.math_cycles <= 1.3 * ideal
    # One more row of tiles costs a fraction of a wave, not a whole one.
    bigger = cost_of(Gemm(m + 128, n, k), spec)
    assert bigger.math_cycles / c.math_cycles == pytest.approx(10 / 9, rel=0.05)


def test_ampere_gemm_keeps_whole_tile_waves() -> None:
    spec = load_gpu("a100-pcie-40gb")
    small = cost_of(Gemm(128 * 12, 2304, 8192), spec)  # 12 x 9 = 108 tiles of 128x256: one wave
    plus = cost_of(Gemm(128 * 12 + 1, 2304, 8192), spec)
    # One more row of tiles opens a second, mostly idle wave (the best other tile still loses).
    assert plus.math_cycles > 1.2 * small.math_cycles


def test_attention_pays_fixed_cycles_per_cta_wave() -> None:
    from joulecast.kernels.attention import CTA_WAVE_CYCLES, CTA_WAVE_CYCLES_PER_DIM

    spec = load_gpu("h100-sxm")
    per_wave = CTA_WAVE_CYCLES + CTA_WAVE_CYCLES_PER_DIM * 128
    one = cost_of(Attention(132, 8, 1, 4, 128, kv_heads=1, paged=True), spec)  # 132 CTAs: 1 wave
    four = cost_of(Attention(528, 8, 1, 4, 128, kv_heads=1, paged=True), spec)  # 4 waves
    assert one.math_cycles >= per_wave
    assert four.math_cycles - one.math_cycles >= 3 * per_wave
    # Short prefill: one wave of GQA-packed CTAs (8 query heads share a KV head).
    pre = cost_of(Attention(1, 32, 128, 128, 128, kv_heads=4), spec)
    assert pre.math_cycles >= per_wave


def test_sliding_window_prefill_streams_only_the_window() -> None:
    spec = load_gpu("h100-sxm")
    full = cost_of(Attention(1, 8, 16384, 16384, 128, kv_heads=1), spec)
    win = cost_of(Attention(1, 8, 16384, 16384, 128, kv_heads=1, window=128), spec)
    q_blocks = 16384 // 128
    window_stream = 8 * q_blocks * 256 * 256 * 2  # heads x blocks x (window+128) keys x K,V bytes
    qo = 2 * 8 * 16384 * 128 * 2
    assert win.l2_bytes == pytest.approx(qo + window_stream)
    assert win.l2_bytes < 0.1 * full.l2_bytes


def test_attention_softmax_is_charged_at_ffma_energy() -> None:
    from joulecast.power import FEATURES, event_matrix
    from joulecast.timeline import FFMA_ENERGY_VS_BF16_TENSOR, ffma_vs_tensor_energy

    spec = load_gpu("h100-sxm")
    # The H100's tensor datapath is twice the A100's: one FFMA costs 16 of its tensor FLOPs.
    assert ffma_vs_tensor_energy(spec) == pytest.approx(2 * FFMA_ENERGY_VS_BF16_TENSOR, rel=1e-3)
    op = Attention(4, 32, 2048, 2048, 128, kv_heads=8)
    cw = compile_workload(Workload("attn", (op,)), spec)
    c = cw.costs[0]
    ev = event_matrix(cw, np.ones((1, 1)), np.array([1000.0]), np.ones(1))[0, 0] / 1e-12
    tensor = ev[FEATURES.index("tensor_pj_per_flop")]
    expected = c.tensor_flops + ffma_vs_tensor_energy(spec) * (c.cuda_flops + 4.0 * c.xu_ops)
    assert tensor == pytest.approx(expected)
    assert ev[FEATURES.index("cuda_pj_per_flop")] == 0.0


def test_operand_alignment_follows_contiguous_dimensions() -> None:
    from joulecast.kernels.gemm import operand_alignment_bytes

    assert operand_alignment_bytes(Gemm(197, 197, 64, batch=256)) == 2  # scores: N = 197
    assert operand_alignment_bytes(Gemm(197, 64, 197, batch=256)) == 2  # probs x V: K = 197
    assert operand_alignment_bytes(Gemm(256, 36, 256, batch=64)) == 8  # 36-wide heads
    assert operand_alignment_bytes(Gemm(197, 4096, 1024)) == 16  # linear: token count is free
    assert operand_alignment_bytes(Gemm(64, 1024, 1)) == 16  # outer product: nothing to align


def test_misaligned_batched_gemm_is_slower_than_padded() -> None:
    # Same work, one token short of a 16-byte multiple: the narrow-copy kernel must not win.
    aligned = _time(Gemm(200, 200, 64, batch=256), "a100-pcie-40gb", 900)
    odd = _time(Gemm(197, 197, 64, batch=256), "a100-pcie-40gb", 900)
    assert odd > 1.5 * aligned


def test_attention_matmuls_cost_the_host_a_function_call_not_a_module_call() -> None:
    from joulecast.coefficients.host import Host
    from joulecast.timeline import pass_times

    params = TimeParams()
    host = Host(id="h", description="", host_op_s=1e-5, host_module_op_s=3e-5, pass_overhead_s=0)
    tiny = {  # host-bound: each op's GPU time is far below its host time
        "linear": Gemm(8, 64, 64),
        "scores": Gemm(8, 8, 64, batch=4),
        "add": Elementwise(512, "add", 2),
    }
    spec = load_gpu("a100-pcie-40gb")
    times = {}
    for name, op in tiny.items():
        cw = compile_workload(Workload(name, (op,) * 100), spec)
        t_u = kernel_times(cw, params, np.array([1000.0]))
        times[name] = float(pass_times(cw, host, t_u).time_s[0])
    assert times["linear"] > 2.5 * times["scores"]
    assert times["scores"] == pytest.approx(times["add"], rel=0.05)


def test_layout_copies_that_fit_in_l2_are_read_back_from_l2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import joulecast.kernels.gemm as gemm

    spec = load_gpu("a100-pcie-40gb")
    small = Conv2d(1, 64, 64, 56, 56, kernel=3, padding=1)
    big = Conv2d(64, 64, 64, 112, 112, kernel=3, padding=1)
    resident = {c: gemm.conv_cost(c, spec).dram_bytes for c in (small, big)}
    monkeypatch.setattr(gemm, "L2_RESIDENT_SHARE", 0.0)
    streamed = {c: gemm.conv_cost(c, spec).dram_bytes for c in (small, big)}
    io = 2 * 64 * 56 * 56 * 2  # small conv: input + output, bf16
    assert streamed[small] - resident[small] == pytest.approx(io)
    assert streamed[big] == resident[big]  # 205 MB copies do not fit in 20 MB


def test_two_byte_aligned_copies_serialise_with_the_mma() -> None:
    # 198 bf16 = 396 B (4-byte copies, cp.async) against 197 bf16 = 394 B (2-byte, synchronous).
    four = _time(Gemm(198, 198, 64, batch=256), "a10", 900)
    two = _time(Gemm(197, 197, 64, batch=256), "a10", 900)
    assert two > 1.5 * four
