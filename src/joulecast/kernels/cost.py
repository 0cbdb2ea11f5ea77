"""Per-launch cost record and the dispatcher from IR op to kernel model."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from joulecast.hardware.spec import GPUSpec
from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Copy,
    Elementwise,
    Embedding,
    Gemm,
    LayerNorm,
    Op,
    Reduction,
    RMSNorm,
    Softmax,
)


class OpClass(IntEnum):
    """Kernel classes that share time-model coefficients."""

    GEMM = 0
    ATTENTION = 1
    ROWWISE = 2
    POINTWISE = 3


@dataclass(frozen=True, slots=True)
class OpCost:
    """Work and time ingredients of one kernel launch (clock independent).

    Attributes:
        op_class: which coefficient group the kernel belongs to.
        tensor_flops: FLOPs on tensor cores.
        cuda_flops: FLOPs on CUDA cores (FP32/FP16 pipes).
        xu_ops: special-function operations (exp, rsqrt, tanh).
        dram_bytes: bytes read from and written to device memory.
        l2_bytes: bytes moved between L2 and the SMs.
        smem_bytes: bytes moved through shared memory / register file staging.
        math_cycles: cycles the busiest SM spends on math at full pipe rate, after tiling and
            wave quantisation (the compute-bound time is ``math_cycles / f``).
        tensor_math: whether ``math_cycles`` run on tensor cores (else CUDA cores).
        sm_fraction: average fraction of SMs holding work (tail effect, tiny grids).
        launches: GPU kernels the op runs as (a channels-first convolution adds layout
            transforms around the implicit GEMM).
    """

    op_class: OpClass
    tensor_flops: float
    cuda_flops: float
    xu_ops: float
    dram_bytes: float
    l2_bytes: float
    smem_bytes: float
    math_cycles: float
    tensor_math: bool
    sm_fraction: float
    launches: float = 1.0
    elements: float = 0.0


def cost_of(op: Op, gpu: GPUSpec) -> OpCost:
    """Cost of one launch of ``op`` on ``gpu`` (cached per shape and part)."""
    return _cost_cached(op, gpu)


@lru_cache(maxsize=65536)
def _cost_cached(op: Op, gpu: GPUSpec) -> OpCost:
    # Imported lazily to keep the import graph acyclic (models import OpCost from here).
    from joulecast.kernels import attention, elementwise, gemm, rowwise

    if isinstance(op, Gemm):
        return gemm.gemm_cost(op, gpu)
    if isinstance(op, Conv2d):
        return gemm.conv_cost(op, gpu)
    if isinstance(op, Attention):
        return attention.attention_cost(op, gpu)
    if isinstance(op, Softmax | LayerNorm | RMSNorm | Reduction):
        return rowwise.rowwise_cost(op, gpu)
    if isinstance(op, Elementwise | Embedding | Copy):
        return elementwise.pointwise_cost(op, gpu)
    raise TypeError(f"no kernel model for {type(op).__name__}")
