"""What one measured call runs: the joulecast ops behind a row of an aiconfigurator table.

A row whose call runs more than one kernel lists them all, and the prediction sums them: fp8
GEMMs include the activation quantisation (:func:`gemm_ops`), attention calls the KV-cache write
(:func:`attention_ops`).
"""

from __future__ import annotations

from typing import Literal

from joulecast.workload.ir import Attention, Copy, Elementwise, Gemm, Op, Precision

Kind = Literal["gemm", "context", "generation"]


def gemm_ops(m: int, n: int, k: int, dtype: str) -> tuple[Op, ...]:
    """The kernels of one measured GEMM call.

    bf16: one GEMM. fp8 / fp8_block: the timing includes quantising the bf16 activation, one
    more streaming kernel (read m·k bf16, write m·k fp8), then the fp8 GEMM with bf16 output.
    """
    if dtype == "bf16":
        return (Gemm(m, n, k, precision=Precision.BF16),)
    quant = Elementwise(
        m * k, op="cast", inputs=1, precision=Precision.BF16, out_precision=Precision.FP8
    )
    return (quant, Gemm(m, n, k, precision=Precision.FP8, out_precision=Precision.BF16))


def attention_ops(
    kind: Kind,
    batch: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    window: int,
    length: int,
    kv_fp8: bool,
) -> tuple[Op, ...]:
    """The kernels of one measured attention call: KV-cache write, then fused attention.

    vLLM's attention layer first writes the new tokens' K and V into the paged cache
    (``reshape_and_cache``: a copy, or a quantising cast for an fp8 cache), then runs the fused
    kernel. The tables show the write is timed: with an fp8 cache, prefill is 10-25 % slower than
    with a bf16 cache although it computes in bf16. Prefill (``context``): causal self-attention
    over ``length`` new tokens, computed in the activation dtype (bf16). Decode (``generation``):
    one query token per sequence over a paged KV cache of ``length``, read in the cache dtype.
    """
    win = window if window > 0 else None
    new_tokens = length if kind == "context" else 1
    kv_elements = batch * new_tokens * kv_heads * head_dim * 2
    write: Op = (
        Elementwise(
            kv_elements, op="cast", inputs=1, precision=Precision.BF16, out_precision=Precision.FP8
        )
        if kv_fp8
        else Copy(kv_elements, precision=Precision.BF16)
    )
    if kind == "context":
        attn = Attention(
            batch,
            heads,
            length,
            length,
            head_dim,
            kv_heads=kv_heads,
            window=win,
            precision=Precision.BF16,
        )
    else:
        attn = Attention(
            batch,
            heads,
            1,
            length,
            head_dim,
            kv_heads=kv_heads,
            window=win,
            paged=True,
            precision=Precision.FP8 if kv_fp8 else Precision.BF16,
        )
    return (write, attn)
