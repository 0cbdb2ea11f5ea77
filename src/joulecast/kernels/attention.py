"""Fused attention: FlashAttention-style prefill and (paged) decode kernels.

Prefill: CTAs of ``BLOCK_Q`` queries per (batch, head) stream K/V blocks through shared memory;
math is the two tensor-core GEMMs over the visited (query, key) pairs (causal masking and sliding
windows skip blocks), plus the online softmax on CUDA cores and the exp unit. On Ampere the softmax
and the GEMMs serialise within a warp; Hopper's FA3 overlaps them (so the slower of the two counts).
Decode: one query per sequence reads the KV cache once; the kernel splits the KV length across
CTAs (flash-decoding) so that all SMs pull from memory.

Each wave of CTAs also pays a fixed set-up and tear-down (CTA launch, barrier and TMA/page-table
set-up, Q-tile load, final softmax rescale, O write-back and, for split KV, the combine) that no
main-loop work hides: ``CTA_WAVE_CYCLES + CTA_WAVE_CYCLES_PER_DIM·d`` SM cycles per wave. It
dominates short-KV decode and short prefill. The query heads of one KV head share a CTA (GQA
packing: FlashAttention-2/3 and FlashInfer load K/V once for the whole group), so a wave holds
``batch·kv_heads·⌈seq_q·group/BLOCK_Q⌉`` CTAs in prefill and ``batch·kv_heads·splits`` in decode.
"""

from __future__ import annotations

import math

from joulecast.hardware.spec import GPUSpec
from joulecast.kernels.arch import arch_params
from joulecast.kernels.cost import OpClass, OpCost
from joulecast.workload.ir import Attention, Precision

BLOCK_Q = 128
XU_OPS_PER_CLK_SM = 16.0
SOFTMAX_CUDA_FLOPS_PER_PAIR = 5.0
# Fixed SM cycles per wave of CTAs (see the module docstring). Measured, not fitted end to end:
# on the aiconfigurator H100-SXM decode table, rows with kv_len <= 16 and head_dim < 512 (18,240
# of 62,166 rows, where the main loop is negligible), latency grows linearly with the number of
# waves ⌈batch·kv_heads / SMs⌉, by 5,078 / 6,872 / 8,378 / 9,951 cycles per wave (at 1,980 MHz)
# for head_dim 64 / 128 / 192 / 256: 3,540 + 25.2·d. The part proportional to d is the Q and O
# tile traffic and the per-row rescale; the rest is CTA set-up and tear-down (~1.8 µs at 1.98 GHz).
# The other rows, the prefill tables and the H200 tables are held out.
CTA_WAVE_CYCLES = 3540.0
CTA_WAVE_CYCLES_PER_DIM = 25.2


def attention_cost(op: Attention, gpu: GPUSpec) -> OpCost:
    """Cost of one fused attention launch."""
    arch = arch_params(gpu)
    sms = gpu.sm_count
    b = op.precision.bytes
    d, dv = op.head_dim, op.v_dim
    pairs = op.batch * op.heads * op.visited_pairs
    tensor_flops = 2.0 * pairs * (d + dv)
    cuda_flops = SOFTMAX_CUDA_FLOPS_PER_PAIR * pairs
    xu = float(pairs)
    prec = op.precision if gpu.supports_tensor(op.precision) else Precision.BF16
    tc_rate = gpu.tensor_flops_per_s(prec, gpu.spec_clock_mhz) / (sms * gpu.spec_clock_mhz * 1e6)
    fp_rate = gpu.cuda_flops_per_s(Precision.FP32, gpu.spec_clock_mhz) / (
        sms * gpu.spec_clock_mhz * 1e6
    )
    kv_heads = op.n_kv_heads
    kv_len = op.seq_kv if op.window is None else min(op.seq_kv, op.window + op.seq_q)
    q_bytes = op.batch * op.heads * op.seq_q * d * b
    o_bytes = op.batch * op.heads * op.seq_q * dv * b
    kv_bytes = op.batch * kv_heads * kv_len * (d + dv) * b

    if op.seq_q == 1 or op.seq_q * op.heads // kv_heads <= 16:
        # Decode: memory-bound sweep of the KV cache, split along the KV axis for parallelism.
        ctas_base = op.batch * kv_heads
        splits = max(1, min(math.ceil(2 * sms / ctas_base), math.ceil(kv_len / 256)))
        ctas = ctas_base * splits
        per_sm = math.ceil(ctas / sms)
        pair_cycles = pairs / ctas * (2.0 * (d + dv) / tc_rate + 1.0 / XU_OPS_PER_CLK_SM)
        cycles = per_sm * pair_cycles
        page_overhead = 1.08 if op.paged else 1.0
        dram = (kv_bytes * page_overhead) + q_bytes + o_bytes
        frac = min(1.0, ctas / sms)
        l2 = dram + (ctas_base * splits * op.seq_q * op.heads / kv_heads * dv * 4.0 * 2)
        waves = per_sm
    else:
        q_blocks = math.ceil(op.seq_q / BLOCK_Q)
        ctas = op.batch * op.heads * q_blocks
        per_sm = math.ceil(ctas / sms)
        per_cta_pairs = pairs / ctas
        t_mma = 2.0 * (d + dv) / tc_rate
        t_soft = SOFTMAX_CUDA_FLOPS_PER_PAIR / fp_rate + 1.0 / XU_OPS_PER_CLK_SM
        per_pair = max(t_mma, t_soft) if arch.operand_reload_factor < 2 else t_mma + t_soft
        cycles = per_sm * per_cta_pairs * per_pair
        if op.window is not None:
            # A query block sees at most the last window + BLOCK_Q keys.
            kv_visit = min(kv_len, op.window + BLOCK_Q)
            kv_stream = op.batch * op.heads * q_blocks * kv_visit * (d + dv) * b
        else:
            kv_stream = op.batch * op.heads * q_blocks * kv_len * (d + dv) * b
            if op.causal:
                kv_stream *= 0.5 + 0.5 / q_blocks
        l2 = q_bytes + o_bytes + kv_stream
        dram = q_bytes + o_bytes + kv_bytes
        frac = min(1.0, ctas / sms) if ctas < sms else ctas / (per_sm * sms)
        group = op.heads // kv_heads
        packed_ctas = op.batch * kv_heads * math.ceil(op.seq_q * group / BLOCK_Q)
        waves = math.ceil(packed_ctas / sms)
    # Per-wave set-up and tear-down run serially with the busiest SM's main loop.
    cycles += waves * (CTA_WAVE_CYCLES + CTA_WAVE_CYCLES_PER_DIM * d)
    return OpCost(
        op_class=OpClass.ATTENTION,
        tensor_flops=tensor_flops,
        cuda_flops=cuda_flops,
        xu_ops=xu,
        dram_bytes=dram,
        l2_bytes=l2,
        smem_bytes=l2 * arch.operand_reload_factor,
        math_cycles=cycles,
        tensor_math=True,
        sm_fraction=frac,
    )
