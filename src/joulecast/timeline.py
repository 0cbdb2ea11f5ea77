"""The whole pass: per-kernel GPU time and the host issuing kernels, as two overlapping timelines.

The host (:class:`~joulecast.coefficients.host.Host`) issues op *i* after
``pass_overhead/2 + Σ_{k≤i} h_k`` (``h`` = ``host_module_op_s`` for module-level
GEMM/conv/attention ops, ``host_op_s`` for the rest, batched activation matmuls included); the
GPU starts it when it has been issued and the previous kernel has finished.
With issue times ``a_i`` and kernel times ``t_i`` the end of the last kernel is
``max_j (a_j + Σ_{i≥j} t_i)``, computed with one reverse cumulative sum (vectorised over clocks).
The synchronised pass then ends after the rest of the fixed host overhead. Idle gaps
(launch-bound stretches and host-only time) draw idle power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from joulecast.coefficients.host import Host
from joulecast.coefficients.params import TimeParams
from joulecast.hardware.spec import GPUSpec
from joulecast.kernels.arch import arch_params
from joulecast.kernels.cost import OpClass, OpCost, cost_of
from joulecast.workload.ir import Gemm, Workload

# Below this fraction of SMs holding work, a streaming kernel cannot keep enough bytes in flight
# to reach full DRAM bandwidth (Little's law); achieved bandwidth falls in proportion.
BANDWIDTH_SATURATION_SM_FRACTION = 0.25


@dataclass(frozen=True)
class CompiledWorkload:
    """Struct-of-arrays view of a workload on one GPU: unique ops, their counts and order."""

    workload: Workload
    gpu: GPUSpec
    unique_ops: tuple[object, ...]
    costs: tuple[OpCost, ...]
    order: NDArray[np.intp]
    count: NDArray[np.float64]
    op_class: NDArray[np.intp]
    tensor_flops: NDArray[np.float64]
    cuda_flops: NDArray[np.float64]
    xu_ops: NDArray[np.float64]
    dram_bytes: NDArray[np.float64]
    l2_bytes: NDArray[np.float64]
    smem_bytes: NDArray[np.float64]
    math_cycles: NDArray[np.float64]
    tensor_math: NDArray[np.bool_]
    sm_fraction: NDArray[np.float64]
    launches: NDArray[np.float64]
    elements: NDArray[np.float64]
    gemm_like: NDArray[np.bool_]
    module_call: NDArray[np.bool_]
    tensor_energy_scale: NDArray[np.float64]
    ffma_vs_tensor: float


# Tensor-core energy per FLOP relative to bf16 (narrower formats move fewer bits per FLOP).
_TENSOR_ENERGY_SCALE = {"fp4": 0.35, "fp8": 0.55, "int8": 0.5, "fp16": 1.0, "bf16": 1.0}
_TENSOR_ENERGY_SCALE.update({"tf32": 1.8, "fp32": 1.8, "fp64": 4.0})


# A CUDA-core GEMM's FFMA FLOP costs about 8x a bf16 tensor-core FLOP of an A100-width tensor
# core (2,048 FLOP/clk/SM; operand delivery through the register file per FMA instead of per MMA
# tile). The bf16 measurements cannot identify this ratio, so it is fixed by physics
# (docs/method.md), and CUDA-core GEMM FLOPs are charged through the tensor-FLOP coefficient.
# Tensor energy per FLOP falls with the datapath width (a wider MMA amortises the same operand
# delivery over more FLOPs) while an FFMA does not, so on other widths the ratio scales with it.
FFMA_ENERGY_VS_BF16_TENSOR = 8.0
REFERENCE_TENSOR_FLOPS_PER_CLK_SM = 2048.0


def ffma_vs_tensor_energy(gpu: GPUSpec) -> float:
    """Energy of an FFMA FLOP in units of ``gpu``'s bf16 tensor FLOP."""
    return (
        FFMA_ENERGY_VS_BF16_TENSOR
        * gpu.tensor_flops_per_clk_per_sm()
        / (REFERENCE_TENSOR_FLOPS_PER_CLK_SM)
    )


def compile_workload(workload: Workload, gpu: GPUSpec) -> CompiledWorkload:
    """Cost every unique op of ``workload`` on ``gpu`` once (cached on the workload object)."""
    cache: dict[GPUSpec, CompiledWorkload] | None = getattr(workload, "_jc_compiled", None)
    if cache is None:
        cache = {}
        object.__setattr__(workload, "_jc_compiled", cache)
    hit = cache.get(gpu)
    if hit is not None:
        return hit
    index: dict[object, int] = {}
    order = np.array([index.setdefault(op, len(index)) for op in workload.ops], dtype=np.intp)
    uniques = tuple(index)
    costs = tuple(cost_of(op, gpu) for op in uniques)  # type: ignore[arg-type]
    count = np.bincount(order, minlength=len(uniques)).astype(np.float64)

    def col(name: str) -> NDArray[np.float64]:
        return np.array([getattr(c, name) for c in costs], dtype=np.float64)

    ffma = ffma_vs_tensor_energy(gpu)
    scale = np.array(
        [
            _TENSOR_ENERGY_SCALE.get(str(getattr(op, "precision", "bf16")), 1.0)
            if c.tensor_math
            else ffma
            for op, c in zip(uniques, costs, strict=True)
        ]
    )
    compiled = CompiledWorkload(
        workload=workload,
        gpu=gpu,
        unique_ops=uniques,
        costs=costs,
        order=order,
        count=count,
        op_class=np.array([int(c.op_class) for c in costs], dtype=np.intp),
        tensor_flops=col("tensor_flops"),
        cuda_flops=col("cuda_flops"),
        xu_ops=col("xu_ops"),
        dram_bytes=col("dram_bytes"),
        l2_bytes=col("l2_bytes"),
        smem_bytes=col("smem_bytes"),
        math_cycles=col("math_cycles"),
        tensor_math=np.array([c.tensor_math for c in costs], dtype=bool),
        sm_fraction=col("sm_fraction"),
        launches=col("launches"),
        elements=col("elements"),
        gemm_like=np.array(
            [c.op_class in (OpClass.GEMM, OpClass.ATTENTION) for c in costs], dtype=bool
        ),
        module_call=np.array(
            [
                c.op_class in (OpClass.GEMM, OpClass.ATTENTION)
                and not (isinstance(op, Gemm) and op.batch > 1)
                for op, c in zip(uniques, costs, strict=True)
            ],
            dtype=bool,
        ),
        tensor_energy_scale=scale,
        ffma_vs_tensor=ffma,
    )
    cache[gpu] = compiled
    return compiled


def kernel_times(
    cw: CompiledWorkload, params: TimeParams, clock_mhz: NDArray[np.float64]
) -> NDArray[np.float64]:
    """GPU time (s) of one launch of each unique op: shape (n_unique, n_clocks)."""
    gpu = cw.gpu
    f_hz = clock_mhz[None, :] * 1e6
    # GEMM-like kernels (tensor or FFMA) run tiled math near peak; the row-wise and pointwise
    # kernels' few FLOPs per byte sit behind address arithmetic, hence a separate efficiency.
    eta = np.where(cw.gemm_like, params.eta_tensor, params.eta_cuda)[:, None]
    t_math = cw.math_cycles[:, None] / (f_hz * eta)
    bw_share = np.minimum(1.0, cw.sm_fraction / BANDWIDTH_SATURATION_SM_FRACTION)
    bw = gpu.memory_bandwidth_b_s * params.eta_dram * bw_share
    t_dram = (cw.dram_bytes / bw)[:, None]
    t_l2 = cw.l2_bytes[:, None] / (arch_params(gpu).l2_bytes_per_clk * f_hz)
    p = params.overlap_p
    body = (t_math**p + t_dram**p + t_l2**p) ** (1.0 / p)
    lat = params.kernel_latency_cycles * cw.launches[:, None] / f_hz
    return np.asarray(lat + body, dtype=np.float64)


@dataclass(frozen=True)
class PassTimes:
    """Timeline summary per clock (arrays of shape (n_clocks,))."""

    time_s: NDArray[np.float64]
    gpu_busy_s: NDArray[np.float64]


def pass_times(cw: CompiledWorkload, host: Host, t_unique: NDArray[np.float64]) -> PassTimes:
    """Synchronised pass time from per-op kernel times and host dispatch."""
    t_seq = t_unique[cw.order]  # (n_ops, n_clocks)
    suffix = np.cumsum(t_seq[::-1], axis=0)[::-1]
    # Module-level ops (linear, conv, attention) cost the host more Python than functional ones;
    # a batched matmul of activations (attention scores) is a tensor function (torch.matmul).
    host_unique = np.where(cw.module_call, host.host_module_op_s, host.host_op_s)
    issue = host.pass_overhead_s / 2 + np.cumsum(host_unique[cw.order])
    gpu_end = np.max(issue[:, None] + suffix, axis=0)
    busy = suffix[0]
    # After the last launch the host finishes the forward call (output objects) while the GPU
    # drains its queue; the synchronise then returns at whichever ends last.
    host_end = issue[-1] + host.pass_overhead_s / 2
    return PassTimes(time_s=np.maximum(gpu_end, host_end), gpu_busy_s=busy)
