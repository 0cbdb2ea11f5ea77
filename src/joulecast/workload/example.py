"""A built-in example workload: a 12-layer, BERT-base-sized encoder pass (batch 8, 128 tokens),
written out op by op as eager PyTorch launches it. Used by ``make demo`` and the benchmarks."""

from __future__ import annotations

from joulecast.workload.ir import Elementwise, Gemm, LayerNorm, Op, Precision, Softmax, Workload


def example_workload(
    batch: int = 8, seq: int = 128, layers: int = 12, hidden: int = 768, heads: int = 12
) -> Workload:
    """A transformer-encoder forward pass in bf16 with eager attention."""
    bf16 = Precision.BF16
    tokens = batch * seq
    head_dim = hidden // heads
    ffn = 4 * hidden
    act = tokens * hidden
    ops: list[Op] = [Elementwise(act, "add", 2, bf16), LayerNorm(tokens, hidden, bf16)]
    for _ in range(layers):
        ops += [Gemm(tokens, hidden, hidden, precision=bf16) for _ in range(3)]
        ops += [
            Gemm(seq, seq, head_dim, batch=batch * heads, precision=bf16),
            Elementwise(batch * heads * seq * seq, "scalar_mul", 1, bf16),
            Elementwise(batch * heads * seq * seq, "add", 2, bf16),
            Softmax(batch * heads * seq, seq, bf16),
            Gemm(seq, head_dim, seq, batch=batch * heads, precision=bf16),
            Gemm(tokens, hidden, hidden, precision=bf16),
            Elementwise(act, "add", 2, bf16),
            LayerNorm(tokens, hidden, bf16),
            Gemm(tokens, ffn, hidden, precision=bf16),
            Elementwise(tokens * ffn, "gelu", 1, bf16),
            Gemm(tokens, hidden, ffn, precision=bf16),
            Elementwise(act, "add", 2, bf16),
            LayerNorm(tokens, hidden, bf16),
        ]
    return Workload(name=f"example-encoder-b{batch}-s{seq}", ops=tuple(ops))
