"""GEMM, batched GEMM and implicit-GEMM convolution.

Scaffold (documented in docs/method.md):

* **Tile choice.** For each candidate block tile BM×BN of the generation the model estimates the
  run time and keeps the fastest, as cuBLAS's heuristics aim to (on Ampere and Ada the ranking
  of tensor-core tiles ignores the tail wave, below).
* **Per-SM math rate** is the pipe's peak per SM per clock, limited by how fast shared memory can
  feed the tile: ``rate = min(F_sm, 2·BM·BN / ((BM+BN)·bytes·reload) · smem_B_per_clk)``.
* **Waves and tail (Ampere, Ada).** Tiles ``G = batch·⌈M/BM⌉·⌈N/BN⌉·split`` are spread over the
  SMs; the busiest SM runs ``⌈G/S⌉`` of them, each ``2·BM·BN·K/split / rate`` cycles (padding of
  partial tiles is paid in full); split-K when tiles are fewer than SMs. A tensor-core tile is
  chosen as cuBLAS's heuristics do, by its throughput over ``max(G/S, 1)`` waves: the tail wave
  does not steer the choice, it is paid afterwards (a 1024-wide layer on 4,096 tokens runs
  128×256 tiles in two waves of which the second is a fifth full, as the A100 BERT passes show).
* **Stream-K (Hopper, Blackwell).** cuBLAS's sm90+ GEMMs are persistent kernels with a stream-K
  tile scheduler: every SM gets an equal share of the main-loop iterations of all
  ``G = batch·⌈M/BM⌉·⌈N/BN⌉`` tiles, tiles whose K range straddles two shares are fixed up
  through fp32 partials. The busiest SM runs ``max(G·K/S, BK)`` K-elements of a tile, each
  ``2·BM·BN / rate`` cycles: no idle SMs in a tail wave and no split-K cap (padding of partial
  tiles in M and N is still paid).
* **Operand alignment.** Tensor-core main loops copy operand panels to shared memory in 16-byte
  vectors per thread. A leading dimension that is not a multiple of 16 bytes (a 197-token ViT
  attention matrix, a 36-wide head) forces the narrower copies of cuBLAS's align-4/2/1 kernels:
  ``a/16`` as many bytes per load instruction, so the feed rate above is scaled by ``a/16`` (the
  contiguous dimensions are K, and N of a batched matmul's B and C). Below 4 bytes (an odd
  bf16 dimension) cp.async cannot be used: the copies are staged through registers and serialise
  with the MMAs, ``1/rate = 1/rate_mma + 1/rate_copy``.
* **Traffic.** L2→SM bytes = every tile streams its A and B panels; DRAM bytes = compulsory
  (A, B, C once) plus the re-fetch of panels that do not fit in L2; tiles split across SMs add an
  fp32 partial write + read each.
"""

from __future__ import annotations

import math
from dataclasses import replace

from joulecast.hardware.spec import GPUSpec
from joulecast.kernels.arch import arch_params
from joulecast.kernels.cost import OpClass, OpCost
from joulecast.workload.ir import Conv2d, Gemm, Precision

_SPLITS = (1, 2, 3, 4, 6, 8, 12, 16)
_MIN_K_PER_SPLIT = 128
# Cost, in the tile choice, of a split-K reduction or stream-K fix-up (the CTA finishing a tile
# waits for its peers' fp32 partials and reduces them: an L2 round trip plus the partial reads).
# Only steers the choice, as cuBLAS's heuristics avoid a reduction that saves little.
REDUCTION_CYCLES = 2000.0
# K-depth of one main-loop iteration (one TMA / cp.async stage: 64 bf16 = 128 B per operand row).
# Stream-K splits tiles at iteration boundaries, so an SM runs at least one iteration.
BLOCK_K = 64
# Share of the L2 a tensor may fill and still be found there by the next kernel (the rest holds
# weights and other streams).
L2_RESIDENT_SHARE = 0.5
# Widest per-thread copy of an operand (cp.async / LDG.128); narrower when leading dims allow less.
VECTOR_BYTES = 16
# cp.async copies 4, 8 or 16 bytes; a 2-byte-aligned operand is staged through registers instead,
# synchronously, so its copies no longer overlap the MMAs.
CP_ASYNC_MIN_BYTES = 4


def _sm_rate_flop_per_clk(gpu: GPUSpec, precision: Precision, tensor: bool) -> float:
    flops = (
        gpu.tensor_flops_per_s(precision, gpu.spec_clock_mhz)
        if tensor
        else gpu.cuda_flops_per_s(precision, gpu.spec_clock_mhz)
    )
    return flops / (gpu.sm_count * gpu.spec_clock_mhz * 1e6)


def _gemm_core(
    gpu: GPUSpec,
    *,
    m: int,
    n: int,
    k: int,
    batch: int,
    precision: Precision,
    out_bytes: float,
    tensor: bool,
    compulsory_in_bytes: float,
    align_bytes: int = VECTOR_BYTES,
) -> OpCost:
    arch = arch_params(gpu)
    align = align_bytes / VECTOR_BYTES
    sms = gpu.sm_count
    b_in = precision.bytes
    peak = _sm_rate_flop_per_clk(gpu, precision, tensor)
    bw_bytes_per_clk = gpu.memory_bandwidth_b_s / (gpu.spec_clock_mhz * 1e6)
    out_total = batch * m * n * out_bytes
    footprint = compulsory_in_bytes / batch + m * n * out_bytes
    miss = max(0.0, 1.0 - gpu.l2_cache_bytes / footprint) if footprint > 0 else 0.0

    best: tuple[float, float, float, float, float] | None = None
    for bm, bn in arch.tiles:
        if tensor:
            feed = 2.0 * bm * bn / ((bm + bn) * b_in * arch.operand_reload_factor)
            mma_rate = min(peak, feed * arch.smem_bytes_per_clk_sm)
            copy_rate = feed * arch.smem_bytes_per_clk_sm * align
            if align_bytes >= CP_ASYNC_MIN_BYTES:
                rate = min(mma_rate, copy_rate)  # asynchronous copies overlap the MMAs
            else:
                rate = 1.0 / (1.0 / mma_rate + 1.0 / copy_rate)
        else:
            rate = peak  # FFMA operands come from registers; the SIMT pipes set the pace
        tiles_mn = batch * math.ceil(m / bm) * math.ceil(n / bn)
        for split in _SPLITS if not arch.stream_k else (1,):
            if split > 1 and (tiles_mn * split > 2 * sms or k / split < _MIN_K_PER_SPLIT):
                break
            k_split = math.ceil(k / split)
            tiles = tiles_mn * split
            if arch.stream_k:
                # The tiles' K-iterations are dealt out evenly; the busiest SM runs the mean
                # share, at least one BLOCK_K iteration. Tiles of the fractional last share are
                # split across SMs and reduced through fp32 partials.
                k_per_sm = max(tiles * k / sms, min(k, BLOCK_K))
                reduced = 0 if tiles % sms == 0 or k <= BLOCK_K else tiles % sms
                waves = max(1.0, tiles / sms)
                frac = min(1.0, tiles * k / (sms * k_per_sm))
            else:
                per_sm = math.ceil(tiles / sms)
                k_per_sm = per_sm * k_split
                reduced = tiles_mn if split > 1 else 0
                waves = float(per_sm)
                frac = min(1.0, tiles / sms) if tiles < sms else tiles / (per_sm * sms)
            cycles = k_per_sm * 2.0 * bm * bn / rate
            operand_l2 = max(
                compulsory_in_bytes, tiles * (bm + bn) * k_split * b_in / arch.operand_multicast
            )
            # fp32 partials, written and read back: every split-K slice of the whole output, or
            # one partial tile per stream-K tile shared by two SMs.
            if split > 1:
                partials = out_total * (4.0 / out_bytes) * 2.0
            else:
                partials = reduced * bm * bn * 4.0 * 2.0
            l2 = operand_l2 + out_total + partials
            # A wave of S tiles covers a ~√S x √S block of output tiles: it streams √S panels of
            # A and √S of B. Panels evicted between waves are fetched again from DRAM.
            side = math.sqrt(min(tiles, sms))
            wave_bytes = waves * side * (bm + bn) * k_split * b_in
            refetch = miss * max(0.0, min(wave_bytes, operand_l2) - compulsory_in_bytes)
            dram = compulsory_in_bytes + out_total + refetch
            mem_cycles = dram / bw_bytes_per_clk
            l2_cycles = l2 / arch.l2_bytes_per_clk
            # cuBLAS's heuristics rank tensor-core kernels by their throughput over the problem's
            # tiles, not by the tail wave: the chosen tile then pays its partial last wave in full.
            rank_cycles = cycles
            if tensor and not arch.stream_k:
                rank_cycles = max(tiles / sms, 1.0) * k_split * 2.0 * bm * bn / rate
            # Same p-norm overlap as the time model.
            est = (rank_cycles**4 + mem_cycles**4 + l2_cycles**4) ** 0.25
            if reduced:
                est += REDUCTION_CYCLES
            if best is None or est < best[0]:
                best = (est, cycles, dram, l2, frac)
    assert best is not None
    _, cycles, dram, l2, frac = best
    flops = 2.0 * batch * m * n * k
    return OpCost(
        op_class=OpClass.GEMM,
        tensor_flops=flops if tensor else 0.0,
        cuda_flops=0.0 if tensor else flops,
        xu_ops=0.0,
        dram_bytes=dram,
        l2_bytes=l2,
        smem_bytes=(l2 - out_total) * arch.operand_reload_factor if tensor else 0.0,
        math_cycles=cycles,
        tensor_math=tensor,
        sm_fraction=frac,
    )


def gemm_cost(op: Gemm, gpu: GPUSpec) -> OpCost:
    """Cost of a (batched) GEMM launch.

    fp4 operands on a part without fp4 tensor cores are weight-only 4-bit GEMMs (mxfp4 experts):
    the weights stream at half a byte and are widened in registers, so they still run on the
    tensor cores, at the next wider native rate.
    """
    native = gpu.supports_tensor(op.precision) or op.precision is Precision.FP4
    tensor = op.tensor_core and native
    compulsory = op.batch * (op.m * op.k + op.k * op.n) * op.precision.bytes
    return _gemm_core(
        gpu,
        m=op.m,
        n=op.n,
        k=op.k,
        batch=op.batch,
        precision=op.precision,
        out_bytes=op.out_precision.bytes,
        tensor=tensor,
        compulsory_in_bytes=compulsory,
        align_bytes=operand_alignment_bytes(op),
    )


def operand_alignment_bytes(op: Gemm) -> int:
    """Widest copy (bytes, at most :data:`VECTOR_BYTES`) that every contiguous dimension allows.

    Operands are contiguous along K (activations, linear weights, a transposed key view); a batched
    matmul's B and C are contiguous along N (attention probabilities times values). A linear
    layer's output features are not told apart from its token count, so only K is checked there.
    Extent-1 dimensions (vector products) impose nothing.
    """
    dims = [d for d in (op.k, op.n if op.batch > 1 else 1) if d > 1]
    width = VECTOR_BYTES
    while width > op.precision.bytes and any((d * op.precision.bytes) % width for d in dims):
        width //= 2
    return width


def conv_cost(op: Conv2d, gpu: GPUSpec) -> OpCost:
    """Cost of a convolution run as an implicit GEMM (im2col rows are re-read from L2)."""
    g = op.as_gemm()
    tensor = op.tensor_core and gpu.supports_tensor(op.precision)
    b = op.precision.bytes
    inputs = op.batch * op.in_channels * op.height * op.width * b
    weights = op.out_channels * (op.in_channels // op.groups) * op.kernel * op.kernel * b
    core = _gemm_core(
        gpu,
        m=g.m,
        n=g.n,
        k=g.k,
        batch=g.batch,
        precision=op.precision,
        out_bytes=b,
        tensor=tensor,
        compulsory_in_bytes=inputs + weights,
    )
    if not tensor:
        return core
    # Eager PyTorch keeps activations channels-first (NCHW); tensor-core convolutions run
    # channels-last, so cuDNN wraps the GEMM in two layout transforms: two more launches and a
    # read + write of the input and of the output. Each transformed copy is read by the very next
    # kernel; when it fits in the L2's resident share that read is an L2 hit and only the copy's
    # write-back reaches DRAM.
    outputs = g.m * g.n * g.batch * b
    extra = 2.0 * (inputs + outputs)
    resident = L2_RESIDENT_SHARE * gpu.l2_cache_bytes
    dram_extra = sum(t if t <= resident else 2.0 * t for t in (inputs, outputs))
    return replace(
        core,
        dram_bytes=core.dram_bytes + dram_extra,
        l2_bytes=core.l2_bytes + extra,
        launches=3.0,
    )
