"""Text encoders of the pipelines, one prompt batch each, as Hugging Face transformers runs
them in bf16.

* ``t5`` (T5 v1.1, umT5, mT5 encoders): RMS (T5) norms, eager attention with a relative
  position bias added to the scores and an fp32 softmax, gated-GELU feed-forward whose output
  projection ``wo`` stays in fp32 (``_keep_in_fp32_modules``): an fp32 GEMM on CUDA cores.
* ``clip``: causal text transformer, SDPA attention, final LayerNorm, pooled projection.
* ``bert``: bidirectional encoder, SDPA attention, post-LayerNorm.
* ``llm`` (Gemma-2, Llama-3 used as encoders): pre-norm decoder layers over the prompt,
  SDPA causal attention with grouped KV heads, RoPE, gated MLP; no LM head.
"""

from __future__ import annotations

from joulecast.diffusion.blocks import fp32_gemm
from joulecast.diffusion.registry import TextEncoderSpec
from joulecast.models.graph import EagerStyle, Emitter, attention_core, numerics_for
from joulecast.workload.ir import Attention, Op, Precision


def build_text_encoder(spec: TextEncoderSpec, batch: int) -> tuple[Op, ...]:
    """The launches of one forward pass of ``spec`` over ``batch`` prompts."""
    e = Emitter(numerics_for("bf16"))
    t, h = batch * spec.seq, spec.hidden
    width = spec.heads * spec.head_dim
    kv_width = (spec.kv_heads or spec.heads) * spec.head_dim
    e.embedding(t, h)
    if spec.kind in ("clip", "bert"):
        e.embedding(t, h)  # positions
        e.ew("pointwise_add", t * h)
    if spec.kind == "bert":
        e.layernorm(t, h)
    for _ in range(spec.layers):
        if spec.kind == "t5":
            _t5_layer(e, spec, batch)
            continue
        if spec.kind != "bert":
            _norm(e, spec, t, h)
        e.linear(t, h, width)
        e.linear(t, h, kv_width)
        e.linear(t, h, kv_width)
        if spec.kind == "llm":
            e.ew("rotary", t * (width + kv_width))
        e.attention(
            Attention(
                batch=batch,
                heads=spec.heads,
                kv_heads=spec.kv_heads,
                seq_q=spec.seq,
                seq_kv=spec.seq,
                head_dim=spec.head_dim,
                causal=spec.kind != "bert",
            )
        )
        e.copy(t * width)
        e.linear(t, width, h)
        e.ew("pointwise_add", t * h)
        if spec.kind == "bert":
            e.layernorm(t, h)
        else:
            _norm(e, spec, t, h)
        _mlp(e, spec, t)
        e.ew("pointwise_add", t * h)
        if spec.kind == "bert":
            e.layernorm(t, h)
    _norm(e, spec, t, h)
    if spec.kind == "clip":  # pooled output: the EOS token, projected
        e.copy(batch * h)
        e.linear(batch, h, h)
    return tuple(e.ops)


def _norm(e: Emitter, spec: TextEncoderSpec, tokens: int, width: int) -> None:
    if spec.kind in ("t5", "llm"):
        e.rmsnorm(tokens, width, gemma=spec.name.lower().startswith("gemma"))
    else:
        e.layernorm(tokens, width)


def _mlp(e: Emitter, spec: TextEncoderSpec, tokens: int) -> None:
    if spec.gated:
        e.linear(tokens, spec.hidden, 2 * spec.ffn)
        e.ew(
            "gelu_and_mul" if spec.name.lower().startswith("gemma") else "silu_and_mul",
            tokens * spec.ffn,
        )
    else:
        e.linear(tokens, spec.hidden, spec.ffn)
        e.ew("gelu", tokens * spec.ffn)
    e.linear(tokens, spec.ffn, spec.hidden)


def _t5_layer(e: Emitter, spec: TextEncoderSpec, batch: int) -> None:
    t, h = batch * spec.seq, spec.hidden
    width = spec.heads * spec.head_dim
    e.rmsnorm(t, h)
    for _ in range(3):
        e.linear(t, h, width)
    attention_core(
        e,
        backend="eager",
        batch=batch,
        seq_q=spec.seq,
        seq_kv=spec.seq,
        heads=spec.heads,
        kv_heads=spec.heads,
        head_dim=spec.head_dim,
        causal=False,
        style=EagerStyle(pre=("pointwise_add",), fp32_softmax=True),
    )
    e.linear(t, width, h)
    e.ew("pointwise_add", t * h)
    e.rmsnorm(t, h)
    e.linear(t, h, spec.ffn)  # wi_0
    e.linear(t, h, spec.ffn)  # wi_1
    e.ew("gelu", t * spec.ffn)
    e.ew("pointwise_mul", t * spec.ffn)
    e.cast(t * spec.ffn, Precision.BF16, Precision.FP32)
    e.ops.append(fp32_gemm(1, t, h, spec.ffn))  # wo kept in fp32
    e.cast(t * h, Precision.FP32, Precision.BF16)
    e.ew("pointwise_add", t * h)
