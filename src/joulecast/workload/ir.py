"""Typed operator list: what a workload asks the GPU to do, one kernel launch per op.

Ops are frozen, hashable dataclasses so that a workload with thousands of launches collapses to a
few dozen unique shapes (counted once, costed once). Sizes are element counts; byte counts come
from the precision.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from joulecast.errors import WorkloadError


class Precision(StrEnum):
    """Numeric format of an op's operands."""

    FP64 = "fp64"
    FP32 = "fp32"
    TF32 = "tf32"
    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT8 = "int8"
    FP4 = "fp4"

    @property
    def bytes(self) -> float:
        """Storage size of one element in bytes (tf32 is stored as fp32)."""
        return _PRECISION_BYTES[self]


_PRECISION_BYTES = {
    Precision.FP64: 8.0,
    Precision.FP32: 4.0,
    Precision.TF32: 4.0,
    Precision.BF16: 2.0,
    Precision.FP16: 2.0,
    Precision.FP8: 1.0,
    Precision.INT8: 1.0,
    Precision.FP4: 0.5,
}


class OpKind(StrEnum):
    """Kernel class of an op; each class has its own time model."""

    GEMM = "gemm"
    CONV2D = "conv2d"
    ATTENTION = "attention"
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    RMSNORM = "rmsnorm"
    ELEMENTWISE = "elementwise"
    EMBEDDING = "embedding"
    COPY = "copy"
    REDUCTION = "reduction"


def _positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise WorkloadError(f"{name}: {key} must be a positive integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class Gemm:
    """(Batched) matrix multiply C[b] = A[b] (m×k) · B[b] (k×n).

    ``m`` is the row count of the output (tokens for a linear layer in row-major terms), ``n`` the
    column count (output features), ``k`` the inner dimension. The time model is symmetric in m and
    n, so the EnergAIzer column-major convention (m = out_features) gives the same cost.
    ``weight_bytes_once`` marks B as a weight shared across the batch (a linear layer), which
    affects compulsory DRAM traffic of batched GEMMs.
    """

    m: int
    n: int
    k: int
    batch: int = 1
    precision: Precision = Precision.BF16
    out_precision: Precision = Precision.BF16
    tensor_core: bool = True
    kind: OpKind = field(default=OpKind.GEMM, init=False)

    def __post_init__(self) -> None:
        _positive("gemm", m=self.m, n=self.n, k=self.k, batch=self.batch)

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.n * self.k


@dataclass(frozen=True, slots=True)
class Conv2d:
    """2-D convolution, costed as an implicit GEMM (M = b·P·Q, N = out channels, K = c·r·s)."""

    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    precision: Precision = Precision.BF16
    tensor_core: bool = True
    kind: OpKind = field(default=OpKind.CONV2D, init=False)

    def __post_init__(self) -> None:
        _positive(
            "conv2d",
            batch=self.batch,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            height=self.height,
            width=self.width,
            kernel=self.kernel,
            stride=self.stride,
            groups=self.groups,
        )
        if self.padding < 0:
            raise WorkloadError(f"conv2d: padding must be >= 0, got {self.padding}")
        if self.out_height <= 0 or self.out_width <= 0:
            raise WorkloadError("conv2d: kernel larger than the padded input")

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    def as_gemm(self) -> Gemm:
        """The implicit GEMM this convolution runs (grouped convs run groups as a batch)."""
        return Gemm(
            m=self.batch * self.out_height * self.out_width,
            n=max(1, self.out_channels // self.groups),
            k=max(1, (self.in_channels // self.groups) * self.kernel * self.kernel),
            batch=self.groups,
            precision=self.precision,
            out_precision=self.precision,
            tensor_core=self.tensor_core,
        )

    @property
    def flops(self) -> float:
        return self.as_gemm().flops


@dataclass(frozen=True, slots=True)
class Attention:
    """Fused (FlashAttention-style) attention of ``seq_q`` queries over ``seq_kv`` keys.

    Decode is ``seq_q = 1`` against a KV cache of ``seq_kv``; ``window`` limits each query to the
    last ``window`` keys (sliding-window layers); ``paged`` selects a paged-KV decode kernel.
    """

    batch: int
    heads: int
    seq_q: int
    seq_kv: int
    head_dim: int
    kv_heads: int | None = None
    causal: bool = True
    window: int | None = None
    paged: bool = False
    head_dim_v: int | None = None
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.ATTENTION, init=False)

    def __post_init__(self) -> None:
        _positive(
            "attention",
            batch=self.batch,
            heads=self.heads,
            seq_q=self.seq_q,
            seq_kv=self.seq_kv,
            head_dim=self.head_dim,
        )
        if self.kv_heads is not None:
            _positive("attention", kv_heads=self.kv_heads)
        if self.window is not None:
            _positive("attention", window=self.window)

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads if self.kv_heads is not None else self.heads

    @property
    def v_dim(self) -> int:
        return self.head_dim_v if self.head_dim_v is not None else self.head_dim

    @property
    def visited_pairs(self) -> float:
        """(query, key) pairs actually computed per head and sequence."""
        sq, skv = self.seq_q, self.seq_kv
        limit = skv if self.window is None else min(skv, self.window)
        if not self.causal or sq == 1:
            return float(sq * limit)
        # Causal with the queries aligned to the end of the keys (prefill: sq == skv).
        offset = skv - sq
        total = 0.0
        # Closed form of sum_i min(offset + i + 1, limit) for i in [0, sq).
        full = max(0, min(sq, limit - offset))
        total += full * offset + full * (full + 1) / 2.0
        total += (sq - full) * limit
        return total

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.heads * self.visited_pairs * (self.head_dim + self.v_dim)


@dataclass(frozen=True, slots=True)
class Softmax:
    """Row-wise softmax over ``cols`` for ``rows`` rows."""

    rows: int
    cols: int
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.SOFTMAX, init=False)

    def __post_init__(self) -> None:
        _positive("softmax", rows=self.rows, cols=self.cols)


@dataclass(frozen=True, slots=True)
class LayerNorm:
    """Row-wise LayerNorm (mean, variance, scale and shift)."""

    rows: int
    cols: int
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.LAYERNORM, init=False)

    def __post_init__(self) -> None:
        _positive("layernorm", rows=self.rows, cols=self.cols)


@dataclass(frozen=True, slots=True)
class RMSNorm:
    """Row-wise RMSNorm. ``fused=False`` is eager PyTorch: pow, mean, rsqrt, mul, mul launches
    are listed as separate ops by the graph builders, and this op stands for the mean reduction."""

    rows: int
    cols: int
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.RMSNORM, init=False)

    def __post_init__(self) -> None:
        _positive("rmsnorm", rows=self.rows, cols=self.cols)


@dataclass(frozen=True, slots=True)
class Reduction:
    """Row-wise reduction (sum, mean, max) of ``cols`` elements into one per row."""

    rows: int
    cols: int
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.REDUCTION, init=False)

    def __post_init__(self) -> None:
        _positive("reduction", rows=self.rows, cols=self.cols)


ELEMENTWISE_OPS = frozenset(
    {
        "add",
        "mul",
        "scalar_add",
        "scalar_mul",
        "cast",
        "relu",
        "gelu",
        "silu",
        "tanh",
        "sigmoid",
        "exp",
        "rsqrt",
        "pow",
        "neg",
        "where",
        "rotary",
        "other",
    }
)


@dataclass(frozen=True, slots=True)
class Elementwise:
    """Pointwise op over ``elements`` outputs reading ``inputs`` tensors of that size.

    ``out_precision`` differs from ``precision`` for casts.
    """

    elements: int
    op: str = "add"
    inputs: int = 2
    precision: Precision = Precision.BF16
    out_precision: Precision | None = None
    kind: OpKind = field(default=OpKind.ELEMENTWISE, init=False)

    def __post_init__(self) -> None:
        _positive("elementwise", elements=self.elements)
        if self.inputs < 0:
            raise WorkloadError(f"elementwise: inputs must be >= 0, got {self.inputs}")
        if self.op not in ELEMENTWISE_OPS:
            raise WorkloadError(
                f"elementwise: unknown op '{self.op}' (known: {', '.join(sorted(ELEMENTWISE_OPS))})"
            )

    @property
    def bytes_moved(self) -> float:
        out = self.out_precision or self.precision
        return self.elements * (self.inputs * self.precision.bytes + out.bytes)


@dataclass(frozen=True, slots=True)
class Embedding:
    """Gather of ``rows`` rows of ``width`` elements from a table (embedding lookup)."""

    rows: int
    width: int
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.EMBEDDING, init=False)

    def __post_init__(self) -> None:
        _positive("embedding", rows=self.rows, width=self.width)


@dataclass(frozen=True, slots=True)
class Copy:
    """Memory copy of ``elements`` elements (contiguous/transpose/cat/slice)."""

    elements: int
    precision: Precision = Precision.BF16
    kind: OpKind = field(default=OpKind.COPY, init=False)

    def __post_init__(self) -> None:
        _positive("copy", elements=self.elements)


Op = (
    Gemm
    | Conv2d
    | Attention
    | Softmax
    | LayerNorm
    | RMSNorm
    | Reduction
    | Elementwise
    | Embedding
    | Copy
)


@dataclass(frozen=True)
class Workload:
    """An ordered list of kernel launches (one forward pass, or one decode step).

    ``tokens`` is how many tokens the pass processes (prefill: batch × prompt length; decode:
    batch × new tokens), when the workload is a language model's pass; it turns energy per pass
    into energy per token.
    """

    name: str
    ops: tuple[Op, ...]
    tokens: int | None = None

    def __post_init__(self) -> None:
        if not self.ops:
            raise WorkloadError(f"workload '{self.name}' has no operators")
        if self.tokens is not None and self.tokens < 1:
            raise WorkloadError(f"workload '{self.name}': tokens must be positive")

    def __len__(self) -> int:
        return len(self.ops)

    def counts(self) -> Counter[Op]:
        """Unique ops with their launch counts (the unit of caching)."""
        return Counter(self.ops)

    @property
    def flops(self) -> float:
        return float(sum(op.flops for op in self.ops if isinstance(op, Gemm | Conv2d | Attention)))
