"""Decoder-only transformers: GPT-2, OPT, Llama/Qwen2/Qwen3/Mistral, Gemma 3 and the attention
part of the MoE families (their feed-forward comes from :mod:`joulecast.models.moe`).

Two graphs are produced:

* ``eager``/``sdpa``: Hugging Face transformers (4.5x) as launched by eager PyTorch: separate
  kernels for every norm step, rotary, cast, transpose copy, ``repeat_kv`` and ``DynamicCache``
  concatenation; ``eager`` attention is bmm + scale/mask + softmax + bmm, ``sdpa`` one fused op.
* ``flash``: a serving engine (vLLM-like): merged QKV and gate/up GEMMs, fused add+RMSNorm,
  fused rotary and SiLU-and-mul, FlashAttention with a paged KV cache (``paged=True`` in decode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joulecast.models.graph import EagerStyle, Emitter, attention_core
from joulecast.models.registry import ModelConfig
from joulecast.workload.ir import Precision


@dataclass(frozen=True, slots=True)
class Step:
    """One forward pass of a decoder.

    Attributes:
        batch: sequences.
        seq: new tokens per sequence (the prompt in prefill, 1 in plain decode).
        past: tokens already in the KV cache of each sequence.
        phase: "prefill" or "decode".
        prefill: prompt tokens prefilled in the same decode step (a serving engine's chunked
            prefill: one more sequence, starting at position 0, batched into every
            token-parallel op; its attention is a separate causal prefill).
    """

    batch: int
    seq: int
    past: int
    phase: str
    prefill: int = 0

    @property
    def tokens(self) -> int:
        """Tokens every token-parallel op (projections, MLP, norms) processes."""
        return self.batch * self.seq + self.prefill

    @property
    def kv(self) -> int:
        return self.past + self.seq


def attend(e: Emitter, st: Step, **kw: Any) -> None:
    """The step's attention: the sequences of the batch against their KV cache and, in a mixed
    serving step, the prefilled prompt chunk against itself (causal, not paged)."""
    attention_core(e, batch=st.batch, seq_q=st.seq, seq_kv=st.kv, **kw)
    if st.prefill:
        kw["paged"] = False
        attention_core(e, batch=1, seq_q=st.prefill, seq_kv=st.prefill, **kw)


def _quant_attention(cfg: ModelConfig) -> bool:
    return cfg.fp8_scope == "all_linear"


def _quant_mlp(cfg: ModelConfig, layer: int) -> bool:
    if cfg.fp8_scope == "all_linear":
        return True
    if cfg.fp8_scope == "mlp_inner_layers":
        return 0 < layer < cfg.layers - 1
    return False


# ---- GPT-2 ------------------------------------------------------------------------------
def _gelu_new(e: Emitter, n: int) -> None:
    """HF NewGELU: 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))), one kernel per op."""
    e.ew("scalar_mul", n)  # 0.5 * x
    e.ew("unspecified_scalar", n)  # pow(x, 3)
    e.ew("scalar_mul", n)  # 0.044715 * x^3
    e.ew("pointwise_add", n)  # x + ...
    e.ew("scalar_mul", n)  # sqrt(2/pi) * (...)
    e.ew("tanh", n)
    e.ew("scalar_mul" if e.trace else "scalar_add", n)  # 1.0 + tanh: the tracer's radd -> mul
    e.ew("pointwise_mul", n)


def _gpt2(cfg: ModelConfig, e: Emitter, st: Step, backend: str) -> None:
    h, heads, hd = cfg.hidden, cfg.heads, cfg.dim_head
    t = st.tokens
    e.embedding(t, h)  # wte
    e.embedding(t, h)  # wpe
    e.ew("pointwise_add", t * h)
    style = EagerStyle(pre=("unspecified_tensor",), missed=("unspecified_scalar",))
    for _ in range(cfg.layers):
        e.layernorm(t, h)
        e.linear(t, h, 3 * h)  # c_attn (Conv1D addmm)
        kv_cache_write(e, cfg, st, backend, heads, hd)
        attend(
            e,
            st,
            backend=backend,
            heads=heads,
            kv_heads=heads,
            head_dim=hd,
            paged=paged_decode(st, backend),
            style=style,
        )
        e.linear(t, h, h)  # c_proj
        e.ew("pointwise_add", t * h)
        e.layernorm(t, h)
        e.linear(t, h, cfg.ffn)
        _gelu_new(e, t * cfg.ffn)
        e.linear(t, cfg.ffn, h)
        e.ew("pointwise_add", t * h)
    e.layernorm(t, h)


# ---- OPT --------------------------------------------------------------------------------
def _opt(cfg: ModelConfig, e: Emitter, st: Step, backend: str) -> None:
    h, heads, hd = cfg.hidden, cfg.heads, cfg.dim_head
    t, f32 = st.tokens, Precision.FP32
    e.embedding(t, h)
    if backend == "eager":
        e.ew("pointwise_add", st.batch * st.seq * st.kv, prec=f32)  # 4-D causal mask
    e.ew("other", st.batch * st.kv, prec=f32, missed=True)  # cumsum of the attention mask
    e.ew("pointwise_mul", st.batch * st.kv, prec=f32)  # positions * mask
    e.embedding(t, h)  # learned positions
    e.ew("pointwise_add", t * h)
    style = EagerStyle(pre=("pointwise_add",), fp32_softmax=True)
    for _ in range(cfg.layers):
        e.layernorm(t, h)
        e.linear(t, h, h)  # q_proj
        e.ew("scalar_mul", t * h)  # q * scaling
        e.linear(t, h, h)  # k_proj
        e.linear(t, h, h)  # v_proj
        kv_cache_write(e, cfg, st, backend, heads, hd)
        attend(
            e,
            st,
            backend=backend,
            heads=heads,
            kv_heads=heads,
            head_dim=hd,
            paged=paged_decode(st, backend),
            style=style,
        )
        e.linear(t, h, h)  # out_proj
        e.ew("pointwise_add", t * h)
        e.layernorm(t, h)
        e.linear(t, h, cfg.ffn)
        e.ew("relu", t * cfg.ffn)
        e.linear(t, cfg.ffn, h)
        e.ew("pointwise_add", t * h)
    e.layernorm(t, h)


# ---- Llama-style ------------------------------------------------------------------------
def paged_decode(st: Step, backend: str) -> bool:
    """Whether this step's attention is a paged-KV decode kernel."""
    return backend == "flash" and st.phase == "decode"


def kv_cache_write(
    e: Emitter, cfg: ModelConfig, st: Step, backend: str, kv_heads: int, width: int
) -> None:
    """KV-cache write: HF DynamicCache concatenates (copies) the whole cache once it holds
    tokens; a paged cache writes only the new tokens."""
    if backend == "flash":
        e.copy(2 * st.tokens * kv_heads * width)
    elif st.past > 0:
        e.copy(st.batch * kv_heads * st.kv * width)
        e.copy(st.batch * kv_heads * st.kv * width)


def rotary_tables(e: Emitter, cfg: ModelConfig, st: Step, rope_dim: int) -> None:
    """HF rotary embedding: inv_freq @ positions (fp32 matmul), cat, cos, sin, scaling, casts."""
    if e.fused:
        return  # the fused rotary kernel reads a precomputed cos/sin cache
    f32 = Precision.FP32
    n = st.seq * rope_dim  # position_ids have batch 1
    e.gemm_fp32_cuda(rope_dim // 2, st.seq, 1)
    e.copy(n, f32)  # cat(freqs, freqs)
    e.ew("other", n, prec=f32, missed=True)  # cos
    e.ew("other", n, prec=f32, missed=True)  # sin
    e.ew("scalar_mul", n, prec=f32)  # cos * attention_scaling
    e.ew("scalar_mul", n, prec=f32)  # sin * attention_scaling
    e.cast(n, f32, e.num.act, missed=True)
    e.cast(n, f32, e.num.act, missed=True)


def apply_rotary(e: Emitter, tokens: int, heads: int, kv_heads: int, rope_dim: int) -> None:
    """q*cos + rotate_half(q)*sin and the same for k (rotate_half = neg + cat)."""
    if e.fused:
        e.ew("rotary", tokens * (heads + kv_heads) * rope_dim)
        return
    for n_heads in (heads, kv_heads):
        n = tokens * n_heads * rope_dim
        e.ew("pointwise_mul", n)  # x * cos
        e.ew("neg", n // 2, missed=True)
        e.copy(n)  # cat(-x2, x1)
        e.ew("pointwise_mul", n)  # rotate_half(x) * sin
        e.ew("pointwise_add", n)


def gated_mlp(
    e: Emitter, tokens: int, hidden: int, width: int, act: str, *, quant: bool = True
) -> None:
    """SwiGLU/GeGLU MLP: gate, act, up, mul, down (merged gate/up and fused act when fused)."""
    if e.fused:
        e.linear(tokens, hidden, 2 * width, quant=quant)
        e.ew(f"{act}_and_mul", tokens * width)
        e.linear(tokens, width, hidden, quant=quant)
        return
    e.linear(tokens, hidden, width, quant=quant)  # gate_proj
    e.ew(act, tokens * width)
    e.linear(tokens, hidden, width, quant=quant)  # up_proj
    e.ew("pointwise_mul", tokens * width)
    e.linear(tokens, width, hidden, quant=quant)  # down_proj


def norm(e: Emitter, cfg: ModelConfig, rows: int, cols: int) -> None:
    """The model's RMSNorm (Gemma flavour for Gemma 3)."""
    e.rmsnorm(rows, cols, gemma=cfg.family == "gemma3")


def residual(e: Emitter, n: int) -> None:
    """Residual add (fused into the next add+RMSNorm kernel in fused mode)."""
    if not e.fused:
        e.ew("pointwise_add", n)


_LLAMA_STYLE = EagerStyle(pre=("scalar_mul", "pointwise_add"), fp32_softmax=True)


def gqa_attention(e: Emitter, cfg: ModelConfig, st: Step, backend: str, layer: int) -> None:
    """Projections, QK-norm, rotary, cache and attention of a Llama-style layer."""
    h, heads, kvh, hd = cfg.hidden, cfg.heads, cfg.kv_heads, cfg.dim_head
    t = st.tokens
    quant = _quant_attention(cfg)
    if e.fused:
        e.linear(t, h, (heads + 2 * kvh) * hd, quant=quant)
    else:
        e.linear(t, h, heads * hd, quant=quant)
        e.linear(t, h, kvh * hd, quant=quant)
        e.linear(t, h, kvh * hd, quant=quant)
    if cfg.qk_norm:
        if cfg.family == "llama4":
            if cfg.uses_rope(layer):  # L2 norm without weight: pow, mean, +eps, rsqrt, mul
                for n_heads in (heads, kvh):
                    rows = t * n_heads
                    e.ew("unspecified_scalar", rows * hd, prec=Precision.FP32)
                    e.reduction(rows, hd, Precision.FP32)
                    e.ew("scalar_add", rows, prec=Precision.FP32)
                    e.ew("unspecified_scalar", rows, prec=Precision.FP32)
                    e.ew("pointwise_mul", rows * hd, prec=Precision.FP32)
        else:
            norm(e, cfg, t * heads, hd)
            norm(e, cfg, t * kvh, hd)
    if cfg.uses_rope(layer):
        apply_rotary(e, t, heads, kvh, hd)
    elif cfg.family == "llama4" and not e.trace:
        e.ew("scalar_mul", t * heads * hd)  # attention temperature tuning on NoPE layers
    kv_cache_write(e, cfg, st, backend, kvh, hd)
    window = cfg.attention_window(layer)
    style = _LLAMA_STYLE
    if cfg.family == "gpt_oss" and backend == "eager":
        # attention sinks: logits are concatenated with one sink column, softmaxed, sliced
        style = EagerStyle(pre=("scalar_mul", "pointwise_add"), fp32_softmax=True)
        e.copy(st.batch * heads * st.seq * (st.kv + 1))
    attend(
        e,
        st,
        backend=backend,
        heads=heads,
        kv_heads=kvh,
        head_dim=hd,
        window=window,
        paged=paged_decode(st, backend),
        style=style,
    )
    e.linear(t, heads * hd, h, quant=quant)


def _llama_like(cfg: ModelConfig, e: Emitter, st: Step, backend: str) -> None:
    from joulecast.models import moe  # local import: moe imports this module

    h = cfg.hidden
    t = st.tokens
    act = "gelu" if cfg.hidden_act.startswith("gelu") else "silu"
    e.embedding(t, h)
    if cfg.family == "gemma3":
        e.ew("scalar_mul", t * h, missed=True)  # embed * sqrt(hidden)
    if backend == "eager" and not e.trace:
        e.ew("where", st.batch * st.seq * st.kv)  # 4-D causal mask
    if cfg.uses_mla:
        rotary_tables(e, cfg, st, cfg.qk_rope_head_dim or 64)
    else:
        rotary_tables(e, cfg, st, cfg.dim_head)
        if cfg.family == "gemma3":
            rotary_tables(e, cfg, st, cfg.dim_head)  # separate local (sliding) rotary
    for layer in range(cfg.layers):
        norm(e, cfg, t, h)
        if cfg.uses_mla:
            moe.mla_attention(e, cfg, st, backend)
        else:
            gqa_attention(e, cfg, st, backend, layer)
        if cfg.family == "gemma3":
            norm(e, cfg, t, h)  # post_attention_layernorm
        residual(e, t * h)
        norm(e, cfg, t, h)  # post_attention / pre_feedforward
        if cfg.is_moe_layer(layer) or cfg.family == "gpt_oss":
            moe.moe_ffn(e, cfg, t, layer)
        else:
            gated_mlp(e, t, h, cfg.dense_ffn_width(layer), act, quant=_quant_mlp(cfg, layer))
        if cfg.family == "gemma3":
            norm(e, cfg, t, h)  # post_feedforward_layernorm
        residual(e, t * h)
    norm(e, cfg, t, h)


def lm_head(e: Emitter, cfg: ModelConfig, st: Step) -> None:
    """Logits of the last position of every sequence (what generation computes)."""
    rows = st.batch
    e.linear(rows, cfg.hidden, cfg.vocab, quant=False)
    if not e.trace:
        e.cast(rows * cfg.vocab, e.num.act, Precision.FP32)  # sampler works in fp32
        e.reduction(rows, cfg.vocab, Precision.FP32)  # argmax / top-k of the sampler


def build_decoder(cfg: ModelConfig, e: Emitter, st: Step, backend: str, head: bool) -> None:
    """Emit one forward pass (prefill or one decode step) of a decoder-only model."""
    if cfg.family == "gpt2":
        _gpt2(cfg, e, st, backend)
    elif cfg.family == "opt":
        _opt(cfg, e, st, backend)
    else:
        _llama_like(cfg, e, st, backend)
    if head:
        lm_head(e, cfg, st)


def kv_cache_elements_per_token(cfg: ModelConfig, backend: str, context: int) -> float:
    """KV-cache elements one token occupies over all layers (windows cap sliding layers)."""
    if cfg.uses_mla:
        assert cfg.kv_lora_rank is not None
        if backend == "flash":
            per_layer = float(cfg.kv_lora_rank + (cfg.qk_rope_head_dim or 0))
        else:
            qk = (cfg.qk_nope_head_dim or 0) + (cfg.qk_rope_head_dim or 0)
            per_layer = float(cfg.heads * (qk + (cfg.v_head_dim or 0)))
        return per_layer * cfg.layers
    total = 0.0
    for layer in range(cfg.layers):
        window = cfg.attention_window(layer)
        share = 1.0
        if backend == "flash" and window is not None and context > window:
            share = window / context
        total += 2 * cfg.kv_heads * cfg.dim_head * share
    return total


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling division."""
    return -(-a // b) if b else 0
