"""Shared machinery of the graph builders: numerics, an op emitter and common sub-graphs.

The :class:`Emitter` appends IR ops in launch order. In ``trace`` mode it reproduces the
EnergAIzer kernel lists: ops that tracer did not record (embedding gathers, copies, ``cat``,
``mean``, casts done by ``.to()``, ``neg``) are dropped, and its op names are kept, including its
bug that maps ``radd`` to a multiply. In ``fused`` mode (the serving-engine graph used with
``attention="flash"``) norms, rotary and gated activations are single fused kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from joulecast.errors import WorkloadError
from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Copy,
    Elementwise,
    Embedding,
    Gemm,
    LayerNorm,
    Op,
    Precision,
    Reduction,
    RMSNorm,
    Softmax,
)

PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "mxfp4")
_PRECISION_ALIASES = {
    "mxfp4": "mxfp4",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp8": "fp8",
    "float8": "fp8",
    "e4m3": "fp8",
    "fp8_e4m3": "fp8",
}


@dataclass(frozen=True, slots=True)
class Numerics:
    """Formats of one run.

    Attributes:
        name: the requested precision (fp32, bf16, fp16, fp8).
        act: activations, norms, softmax, attention and non-quantised GEMMs.
        gemm: operands of quantised linear layers (fp8 runs: fp8; otherwise ``act``).
        tensor_core: whether GEMMs use tensor cores (PyTorch runs fp32 matmul on CUDA cores).
        conv: convolution precision (fp32 convolutions run as TF32: cuDNN's default).
    """

    name: str
    act: Precision
    gemm: Precision
    tensor_core: bool
    conv: Precision


def numerics_for(precision: str) -> Numerics:
    """Numerics of a requested precision.

    Raises:
        WorkloadError: the precision is not one of fp32, bf16, fp16, fp8.
    """
    key = _PRECISION_ALIASES.get(str(precision).strip().lower())
    if key is None:
        raise WorkloadError(
            f"unsupported precision '{precision}' (choose one of: {', '.join(PRECISIONS)})"
        )
    if key == "fp32":
        return Numerics(key, Precision.FP32, Precision.FP32, False, Precision.TF32)
    if key == "fp8":
        return Numerics(key, Precision.BF16, Precision.FP8, True, Precision.BF16)
    if key == "mxfp4":
        # Weight-only 4-bit experts (4 bits + an 8-bit scale per 32 values); everything else
        # bf16. The expert GEMMs are costed as fp4 operands: their weights stream at half a byte
        # (decode is memory-bound); parts without fp4 tensor cores price the math at the next
        # wider native rate.
        return Numerics(key, Precision.BF16, Precision.FP4, True, Precision.BF16)
    p = Precision(key)
    return Numerics(key, p, p, True, p)


# EnergAIzer elementwise name -> (IR op, full-size inputs); same table as the importer.
_EW: dict[str, tuple[str, int]] = {
    "pointwise_add": ("add", 2),
    "pointwise_mul": ("mul", 2),
    "scalar_add": ("scalar_add", 1),
    "scalar_mul": ("scalar_mul", 1),
    "relu": ("relu", 1),
    "gelu": ("gelu", 1),
    "silu": ("silu", 1),
    "tanh": ("tanh", 1),
    "sigmoid": ("sigmoid", 1),
    "unspecified_tensor": ("other", 2),
    "unspecified_scalar": ("other", 1),
    # ops the tracer never recorded (emitted outside trace mode only)
    "neg": ("neg", 1),
    "where": ("where", 1),
    "exp": ("exp", 1),
    "rotary": ("rotary", 1),
    "silu_and_mul": ("silu", 2),
    "gelu_and_mul": ("gelu", 2),
    "other": ("other", 1),
    # score-matrix ops whose second operand is a mask broadcast over heads: it stays in L2, so
    # the kernel streams one full-size input (the EnergAIzer tracer counted two)
    "mask_add": ("add", 1),
    "mask_where": ("other", 1),
}
_MASK_OPS = {"pointwise_add": "mask_add", "unspecified_tensor": "mask_where"}


@dataclass
class Emitter:
    """Collects ops in launch order.

    Attributes:
        num: precision settings.
        trace: reproduce the EnergAIzer tracer (drop ops it missed, keep its quirks).
        fused: serving-engine kernels (fused norms, rotary, gated activation).
    """

    num: Numerics
    trace: bool = False
    fused: bool = False
    ops: list[Op] = field(default_factory=list)

    # ---- GEMMs --------------------------------------------------------------------------
    def linear(
        self, tokens: int, in_features: int, out_features: int, *, quant: bool = True
    ) -> None:
        """A linear layer on ``tokens`` rows (bias fused into the GEMM epilogue)."""
        prec = self.num.gemm if quant and self.num.name != "mxfp4" else self.num.act
        if prec is Precision.FP8 and not self.trace:
            # dynamic per-token activation quantisation before every fp8 GEMM
            self.cast(tokens * in_features, self.num.act, Precision.FP8)
        self.ops.append(
            Gemm(
                m=tokens,
                n=out_features,
                k=in_features,
                precision=prec,
                out_precision=self.num.act,
                tensor_core=self.num.tensor_core,
            )
        )

    def grouped_linear(
        self, groups: int, rows: int, in_features: int, out_features: int, *, quant: bool = True
    ) -> None:
        """``groups`` independent linears (MoE experts) of ``rows`` tokens each."""
        prec = self.num.gemm if quant else self.num.act
        if prec is Precision.FP8 and not self.trace:
            self.cast(groups * rows * in_features, self.num.act, Precision.FP8)
        self.ops.append(
            Gemm(
                m=rows,
                n=out_features,
                k=in_features,
                batch=groups,
                precision=prec,
                out_precision=self.num.act,
                tensor_core=self.num.tensor_core,
            )
        )

    def bmm(self, batch: int, m: int, n: int, k: int) -> None:
        """A batched matmul of activations (attention scores, MLA absorption)."""
        self.ops.append(
            Gemm(
                m=m,
                n=n,
                k=k,
                batch=batch,
                precision=self.num.act,
                out_precision=self.num.act,
                tensor_core=self.num.tensor_core,
            )
        )

    def gemm_fp32_cuda(self, m: int, n: int, k: int) -> None:
        """A small fp32 matmul on CUDA cores (rotary frequency table)."""
        self.ops.append(
            Gemm(
                m=m,
                n=n,
                k=k,
                precision=Precision.FP32,
                out_precision=Precision.FP32,
                tensor_core=False,
            )
        )

    def conv(
        self,
        batch: int,
        c_in: int,
        c_out: int,
        hw: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> int:
        """A square 2-D convolution; returns the output height/width."""
        op = Conv2d(
            batch=batch,
            in_channels=c_in,
            out_channels=c_out,
            height=hw,
            width=hw,
            kernel=kernel,
            stride=stride,
            padding=padding,
            groups=groups,
            precision=self.num.conv,
            tensor_core=self.num.conv is not Precision.FP32,
        )
        self.ops.append(op)
        return op.out_height

    # ---- memory-bound ops ----------------------------------------------------------------
    def ew(
        self, name: str, elements: int, *, prec: Precision | None = None, missed: bool = False
    ) -> None:
        """An elementwise op by EnergAIzer name; ``missed`` = the tracer did not record it."""
        if missed and self.trace:
            return
        op, inputs = _EW[name]
        self.ops.append(
            Elementwise(elements=elements, op=op, inputs=inputs, precision=prec or self.num.act)
        )

    def cast(self, elements: int, src: Precision, dst: Precision, *, missed: bool = False) -> None:
        """A dtype conversion (nothing when ``src == dst``)."""
        if src is dst or (missed and self.trace):
            return
        self.ops.append(
            Elementwise(elements=elements, op="cast", inputs=1, precision=src, out_precision=dst)
        )

    def softmax(self, rows: int, cols: int, prec: Precision | None = None) -> None:
        self.ops.append(Softmax(rows=rows, cols=cols, precision=prec or self.num.act))

    def layernorm(self, rows: int, cols: int) -> None:
        self.ops.append(LayerNorm(rows=rows, cols=cols, precision=self.num.act))

    def rmsnorm_fused(self, rows: int, cols: int) -> None:
        self.ops.append(RMSNorm(rows=rows, cols=cols, precision=self.num.act))

    def attention(self, op: Attention) -> None:
        self.ops.append(op)

    # ---- ops the EnergAIzer tracer missed ------------------------------------------------
    def copy(self, elements: int, prec: Precision | None = None) -> None:
        """A copy kernel (contiguous/transpose/cat/KV-cache write); not in trace mode."""
        if not self.trace:
            self.ops.append(Copy(elements=elements, precision=prec or self.num.act))

    def embedding(self, rows: int, width: int) -> None:
        """An embedding gather; not in trace mode."""
        if not self.trace:
            self.ops.append(Embedding(rows=rows, width=width, precision=self.num.act))

    def reduction(self, rows: int, cols: int, prec: Precision | None = None) -> None:
        """A row reduction (mean, sum, max, top-k); not in trace mode."""
        if not self.trace:
            self.ops.append(Reduction(rows=rows, cols=cols, precision=prec or self.num.act))

    # ---- common sub-graphs ---------------------------------------------------------------
    def rmsnorm(self, rows: int, cols: int, *, gemma: bool = False) -> None:
        """RMSNorm as the framework launches it.

        Eager PyTorch (HF ``LlamaRMSNorm``): cast to fp32, pow, mean, +eps, rsqrt, mul, cast
        back, weight mul. Gemma multiplies by ``1 + weight`` in fp32 before casting back.
        Fused mode: one RMSNorm kernel.
        """
        if self.fused:
            self.rmsnorm_fused(rows, cols)
            return
        f32, act = Precision.FP32, self.num.act
        n = rows * cols
        self.cast(n, act, f32, missed=True)
        self.ew("unspecified_scalar", n, prec=f32)  # pow(2)
        self.reduction(rows, cols, f32)  # mean
        self.ew("scalar_add", rows, prec=f32)  # + eps
        self.ew("unspecified_scalar", rows, prec=f32)  # rsqrt
        self.ew("pointwise_mul", n, prec=f32)
        if gemma:
            self.ew("scalar_add", cols, prec=f32)  # 1 + weight
            self.ew("scalar_mul", n, prec=f32)
            self.cast(n, f32, act, missed=True)
        else:
            self.cast(n, f32, act, missed=True)
            self.ew("scalar_mul", n)  # weight * x


@dataclass(frozen=True, slots=True)
class EagerStyle:
    """What a model's eager attention launches between the two bmms.

    Attributes:
        pre: EnergAIzer op names applied to the score matrix before softmax, in order.
        missed: score ops the EnergAIzer tracer did not record (emitted outside trace mode).
        fp32_softmax: softmax computed in fp32 with casts around it (``dtype=torch.float32``).
        repeat_kv: GQA keys/values are materialised per query head (HF ``repeat_kv``).
    """

    pre: tuple[str, ...] = ()
    missed: tuple[str, ...] = ()
    fp32_softmax: bool = False
    repeat_kv: bool = True


def attention_core(
    e: Emitter,
    *,
    backend: str,
    batch: int,
    seq_q: int,
    seq_kv: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    head_dim_v: int | None = None,
    causal: bool = True,
    window: int | None = None,
    paged: bool = False,
    style: EagerStyle = EagerStyle(),
) -> None:
    """Score/softmax/value part of attention (projections excluded)."""
    hd_v = head_dim_v or head_dim
    if backend == "eager":
        if style.repeat_kv and kv_heads < heads:
            e.copy(batch * heads * seq_kv * head_dim)
            e.copy(batch * heads * seq_kv * hd_v)
        bh = batch * heads
        scores = bh * seq_q * seq_kv
        e.bmm(bh, seq_q, seq_kv, head_dim)
        for name in style.missed:
            e.ew(name, scores, missed=True)
        for name in style.pre:
            e.ew(name if e.trace else _MASK_OPS.get(name, name), scores)
        if style.fp32_softmax:
            e.cast(scores, e.num.act, Precision.FP32)
            e.cast(scores, Precision.FP32, e.num.act)
            e.softmax(bh * seq_q, seq_kv, Precision.FP32)
        else:
            e.softmax(bh * seq_q, seq_kv)
        e.bmm(bh, seq_q, hd_v, seq_kv)
        e.copy(batch * seq_q * heads * hd_v)  # transpose(1, 2).contiguous()
        return
    e.attention(
        Attention(
            batch=batch,
            heads=heads,
            kv_heads=kv_heads,
            seq_q=seq_q,
            seq_kv=seq_kv,
            head_dim=head_dim,
            head_dim_v=head_dim_v,
            causal=causal,
            window=window if backend == "flash" else None,
            paged=paged,
            precision=e.num.act,
        )
    )
    if backend == "sdpa":
        e.copy(batch * seq_q * heads * hd_v)  # transpose(1, 2).contiguous()


def op_bytes(op: Op) -> float:
    """Compulsory DRAM bytes of one op: operands read once plus the output written once.

    A convention for comparing graphs (the estimator has its own traffic model): GEMM A, B and
    C; convolution input, filter and output; attention Q, K, V and O; row-wise ops read and
    write the tensor; reductions read the tensor and write one value per row.
    """
    if isinstance(op, Gemm):
        a = op.batch * op.m * op.k
        b = op.batch * op.k * op.n
        return (a + b) * op.precision.bytes + op.batch * op.m * op.n * op.out_precision.bytes
    if isinstance(op, Conv2d):
        x = op.batch * op.in_channels * op.height * op.width
        w = op.out_channels * (op.in_channels // op.groups) * op.kernel * op.kernel
        y = op.batch * op.out_channels * op.out_height * op.out_width
        return (x + w + y) * op.precision.bytes
    if isinstance(op, Attention):
        q = op.batch * op.heads * op.seq_q * op.head_dim
        kv = op.batch * op.n_kv_heads * op.seq_kv * (op.head_dim + op.v_dim)
        o = op.batch * op.heads * op.seq_q * op.v_dim
        return (q + kv + o) * op.precision.bytes
    if isinstance(op, Softmax | LayerNorm | RMSNorm):
        return 2.0 * op.rows * op.cols * op.precision.bytes
    if isinstance(op, Reduction):
        return (op.rows * op.cols + op.rows) * op.precision.bytes
    if isinstance(op, Elementwise):
        return op.bytes_moved
    if isinstance(op, Embedding):
        return 2.0 * op.rows * op.width * op.precision.bytes
    return 2.0 * op.elements * op.precision.bytes
