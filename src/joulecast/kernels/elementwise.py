"""Pointwise kernels: elementwise math, casts, embedding gathers and copies.

Pure streaming kernels: bytes read + bytes written at DRAM, a few FLOPs per element, transcendental
activations (gelu, tanh, silu, sigmoid, exp) on the special-function unit. PyTorch launches CTAs of
128 threads with 4 elements each, which sets how many SMs carry work for small tensors.
"""

from __future__ import annotations

import math

from joulecast.hardware.spec import GPUSpec
from joulecast.kernels.cost import OpClass, OpCost
from joulecast.workload.ir import Copy, Elementwise, Embedding, Precision

ELEMENTS_PER_CTA = 512
XU_OPS_PER_CLK_SM = 16.0
# Special-function-unit ops per element. The exact GELU has none: CUDA's erff is a polynomial on
# the FMA pipe (its FLOPs below), and PyTorch's kernel calls nothing else.
_XU_OPS = {"tanh": 1.0, "silu": 1.0, "sigmoid": 1.0, "exp": 1.0, "rsqrt": 1.0}
_FLOPS = {"gelu": 8.0, "silu": 3.0, "sigmoid": 3.0, "tanh": 2.0, "pow": 1.0, "rotary": 3.0}


def pointwise_cost(op: Elementwise | Embedding | Copy, gpu: GPUSpec) -> OpCost:
    """Cost of one pointwise launch."""
    if isinstance(op, Elementwise):
        elements = float(op.elements)
        moved = op.bytes_moved
        flops = _FLOPS.get(op.op, 1.0) * elements
        xu = _XU_OPS.get(op.op, 0.0) * elements
    elif isinstance(op, Embedding):
        elements = float(op.rows) * op.width
        moved = 2.0 * elements * op.precision.bytes + op.rows * 8.0
        flops, xu = 0.0, 0.0
    else:
        elements = float(op.elements)
        moved = 2.0 * elements * op.precision.bytes
        flops, xu = 0.0, 0.0
    sms = gpu.sm_count
    ctas = math.ceil(elements / ELEMENTS_PER_CTA)
    per_sm = math.ceil(ctas / sms)
    frac = min(1.0, ctas / sms) if ctas < sms else ctas / (per_sm * sms)
    fp_rate = gpu.cuda_flops_per_s(Precision.FP32, gpu.spec_clock_mhz) / (
        sms * gpu.spec_clock_mhz * 1e6
    )
    active = max(1.0, frac * sms)
    cycles = flops / (fp_rate * active) + xu / (XU_OPS_PER_CLK_SM * active)
    return OpCost(
        op_class=OpClass.POINTWISE,
        tensor_flops=0.0,
        cuda_flops=flops,
        xu_ops=xu,
        dram_bytes=moved,
        l2_bytes=moved,
        smem_bytes=0.0,
        math_cycles=cycles,
        tensor_math=False,
        sm_fraction=frac,
        elements=elements,
    )
