"""Row-wise reductions: softmax, LayerNorm, RMSNorm and plain reductions.

These kernels are bandwidth/latency bound: each row is read once (softmax keeps short rows in
registers, long rows are re-read from L2), a few FLOPs and special-function operations are spent
per element, and the result is written once. Parallelism is rows: a warp per short row (≤1024
elements) or a CTA per long row, which sets the fraction of SMs at work.
"""

from __future__ import annotations

import math

from joulecast.hardware.spec import GPUSpec
from joulecast.kernels.cost import OpClass, OpCost
from joulecast.workload.ir import LayerNorm, Precision, Reduction, RMSNorm, Softmax

XU_OPS_PER_CLK_SM = 16.0
# (CUDA-core FLOPs per element, XU ops per element, XU ops per row, output elements per input)
_PROFILE: dict[type, tuple[float, float, float, float]] = {
    Softmax: (4.0, 1.0, 1.0, 1.0),
    LayerNorm: (8.0, 0.0, 1.0, 1.0),
    RMSNorm: (4.0, 0.0, 1.0, 1.0),
    Reduction: (1.0, 0.0, 0.0, 0.0),
}


def rowwise_cost(op: Softmax | LayerNorm | RMSNorm | Reduction, gpu: GPUSpec) -> OpCost:
    """Cost of one row-wise kernel launch."""
    flops_per_elt, xu_per_elt, xu_per_row, out_per_in = _PROFILE[type(op)]
    elements = float(op.rows) * op.cols
    b = op.precision.bytes
    read = elements * b
    written = elements * b * out_per_in + (op.rows * b if out_per_in == 0 else 0.0)
    params = op.cols * b * (2 if isinstance(op, LayerNorm) else 1 if isinstance(op, RMSNorm) else 0)
    long_rows = op.cols > 1024
    ctas = op.rows if long_rows else math.ceil(op.rows / 4)
    sms = gpu.sm_count
    per_sm = math.ceil(ctas / sms)
    frac = min(1.0, ctas / sms) if ctas < sms else ctas / (per_sm * sms)
    fp_rate = gpu.cuda_flops_per_s(Precision.FP32, gpu.spec_clock_mhz) / (
        sms * gpu.spec_clock_mhz * 1e6
    )
    cuda_flops = flops_per_elt * elements
    xu = xu_per_elt * elements + xu_per_row * op.rows
    active = max(1.0, frac * sms)
    cycles = cuda_flops / (fp_rate * active) + xu / (XU_OPS_PER_CLK_SM * active)
    reread = read if long_rows and isinstance(op, Softmax | LayerNorm | RMSNorm) else 0.0
    return OpCost(
        op_class=OpClass.ROWWISE,
        tensor_flops=0.0,
        cuda_flops=cuda_flops,
        xu_ops=xu,
        dram_bytes=read + written + params,
        l2_bytes=read + written + params + reread,
        smem_bytes=elements * 4.0 / 32.0,
        math_cycles=cycles,
        tensor_math=False,
        sm_fraction=frac,
        elements=elements,
    )
