"""A synthetic 960-kernel EnergAIzer kernel list shaped like a 28-layer decoder prefill.

The speed benchmarks use it so that they run without the reference data: 28 layers of norms,
projections, attention (eager: batched matmuls and a softmax), casts and an MLP, 34 launches each,
plus the embedding-side and final kernels, 960 launches in all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LAYERS = 28
HIDDEN, HEADS, FFN, BATCH, SEQ = 1536, 12, 8960, 8, 1024


def _gemm(m: int, n: int, k: int, batch: int = 1) -> list[Any]:
    params = {"batch": batch, "dimM": m, "dimN": n, "dimK": k, "precM": "bf16", "precA": "bf16"}
    return [{**params, "useTensorCore": True}, ["gemm", "tensor", "bf16_bf16"]]


def _pointwise(op: str, dim: int, prec: str = "bf16") -> list[Any]:
    return [{"dim": dim, "op": op, "prec": prec}, ["elementwise"]]


def kernel_list() -> list[list[Any]]:
    """The 960 ``[params, op_type]`` entries."""
    tokens = BATCH * SEQ
    act = tokens * HIDDEN
    layer = [
        _pointwise("typecast_to_fp32", act),
        _pointwise("pointwise_mul", act, "fp32"),
        [{"batch": tokens, "dim": HIDDEN, "prec": "fp32"}, ["rmsnorm", "fp32"]],
        _pointwise("typecast_to_bf16", act, "fp32"),
        _gemm(tokens, HIDDEN, HIDDEN),
        _gemm(tokens, 256, HIDDEN),
        _gemm(tokens, 256, HIDDEN),
        _pointwise("pointwise_mul", act),
        _pointwise("pointwise_add", act),
        _pointwise("pointwise_mul", tokens * 256),
        _pointwise("pointwise_add", tokens * 256),
        _gemm(SEQ, SEQ, HIDDEN // HEADS, BATCH * HEADS),
        _pointwise("scalar_mul", BATCH * HEADS * SEQ * SEQ),
        _pointwise("pointwise_add", BATCH * HEADS * SEQ * SEQ),
        [{"batch": BATCH * HEADS * SEQ, "dim": SEQ, "prec": "fp32"}, ["softmax", "fp32"]],
        _pointwise("typecast_to_bf16", BATCH * HEADS * SEQ * SEQ, "fp32"),
        _gemm(SEQ, HIDDEN // HEADS, SEQ, BATCH * HEADS),
        _gemm(tokens, HIDDEN, HIDDEN),
        _pointwise("pointwise_add", act),
        _pointwise("typecast_to_fp32", act),
        _pointwise("pointwise_mul", act, "fp32"),
        [{"batch": tokens, "dim": HIDDEN, "prec": "fp32"}, ["rmsnorm", "fp32"]],
        _pointwise("typecast_to_bf16", act, "fp32"),
        _gemm(tokens, FFN, HIDDEN),
        _gemm(tokens, FFN, HIDDEN),
        _pointwise("silu", tokens * FFN),
        _pointwise("pointwise_mul", tokens * FFN),
        _gemm(tokens, HIDDEN, FFN),
        _pointwise("pointwise_add", act),
        _pointwise("scalar_mul", act),
        _pointwise("scalar_add", act),
        _pointwise("pointwise_mul", act),
        _pointwise("pointwise_add", act),
        _pointwise("scalar_mul", act),
    ]
    head = [_pointwise("scalar_mul", tokens * 16) for _ in range(6)]
    tail = [_pointwise("typecast_to_fp32", act), _gemm(tokens, 151936, HIDDEN)]
    out = head + layer * LAYERS + tail
    assert len(out) == 960, len(out)
    return out


def write_kernel_list(path: Path) -> Path:
    """Write the kernel list as EnergAIzer JSON to ``path``."""
    path.write_text(json.dumps(kernel_list()))
    return path
