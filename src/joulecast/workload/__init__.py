"""The operator IR and its importers."""

from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Copy,
    Elementwise,
    Embedding,
    Gemm,
    LayerNorm,
    Op,
    OpKind,
    Precision,
    Reduction,
    RMSNorm,
    Softmax,
    Workload,
)

__all__ = [
    "Attention",
    "Conv2d",
    "Copy",
    "Elementwise",
    "Embedding",
    "Gemm",
    "LayerNorm",
    "Op",
    "OpKind",
    "Precision",
    "RMSNorm",
    "Reduction",
    "Softmax",
    "Workload",
]
