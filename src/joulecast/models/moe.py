"""Mixture-of-experts feed-forward (Qwen3-MoE, Mixtral, Llama 4, gpt-oss, DeepSeek-V3) and
DeepSeek multi-head latent attention (MLA).

Routed experts are grouped GEMMs over the experts that receive tokens. With ``T`` tokens, ``E``
experts and top-``k`` routing (``k`` distinct experts per token), the active experts are the
expected number a uniform router hits, ``E·(1 - (1 - k/E)^T)`` (occupancy of ``E`` bins by ``T``
draws of ``k``), and the ``T*k`` (token, expert) pairs are shared evenly among them. Small decode
batches therefore read fewer expert weights than ``min(E, T*k)``: 16 tokens top-8 of 128 touch
about 82 experts, not 128. The attention layers come from :mod:`joulecast.models.decoder`.
"""

from __future__ import annotations

from joulecast.models.decoder import (
    Step,
    apply_rotary,
    attend,
    ceil_div,
    gated_mlp,
    kv_cache_write,
    norm,
    paged_decode,
)
from joulecast.models.graph import EagerStyle, Emitter
from joulecast.models.registry import ModelConfig
from joulecast.workload.ir import Precision


def expert_load(tokens: int, experts: int, top_k: int) -> tuple[int, int]:
    """(active experts, tokens per active expert) for ``tokens`` routed top-``top_k``."""
    pairs = tokens * top_k
    k = min(top_k, experts)
    expected = experts * (1.0 - (1.0 - k / experts) ** tokens)
    active = max(1, k, min(experts, pairs, round(expected)))
    return active, max(1, ceil_div(pairs, active))


def _quant_experts(cfg: ModelConfig, layer: int) -> bool:
    if cfg.fp8_scope == "routed_experts_inner_layers":
        return 0 < layer < cfg.layers - 1
    return cfg.fp8_scope == "all_linear"


def moe_ffn(e: Emitter, cfg: ModelConfig, tokens: int, layer: int) -> None:
    """Router, top-k, routed experts (grouped GEMMs), shared experts and the combine."""
    h, n_exp, top_k = cfg.hidden, cfg.num_experts, cfg.num_experts_per_tok
    width = cfg.expert_width
    f32 = Precision.FP32
    t = tokens
    pairs = t * top_k
    active, per_expert = expert_load(t, n_exp, top_k)
    quant = _quant_experts(cfg, layer)
    # router (kept in bf16 by every fp8 recipe)
    e.linear(t, h, n_exp, quant=False)
    if cfg.family in ("deepseek_v3", "llama4"):
        e.ew("sigmoid", t * n_exp, prec=f32 if cfg.family == "deepseek_v3" else None)
    else:
        e.softmax(t, n_exp, f32)
    e.reduction(t, n_exp, f32)  # top-k
    if cfg.family in ("qwen3_moe", "mixtral", "deepseek_v3") and not e.fused:
        e.reduction(t, top_k, f32)  # renormalise the top-k weights
        e.ew("scalar_mul", pairs, prec=f32)
    if cfg.expert_parallel > 1:
        # This GPU holds 1/ep of the experts: it sees its share of the (token, expert) pairs and
        # of the experts they wake (the router itself runs over every expert).
        ep = cfg.expert_parallel
        pairs = ceil_div(pairs, ep)
        active = max(1, ceil_div(active, ep))
        per_expert = max(1, ceil_div(pairs, active))
    # dispatch: gather tokens per expert
    e.copy(pairs * h)
    if cfg.family == "llama4":
        e.ew("pointwise_mul", pairs * h)  # routed input scaled by the sigmoid score
    if e.fused:
        e.grouped_linear(active, per_expert, h, 2 * width, quant=quant)
        e.ew("silu_and_mul", pairs * width)
    else:
        e.grouped_linear(active, per_expert, h, width, quant=quant)  # gate
        if cfg.family == "gpt_oss":  # clamped SwiGLU: clamp, sigmoid(alpha*x), mul, +1, mul
            e.ew("other", pairs * width)
            e.ew("sigmoid", pairs * width)
        else:
            e.ew("silu", pairs * width)
        e.grouped_linear(active, per_expert, h, width, quant=quant)  # up
        e.ew("pointwise_mul", pairs * width)
    e.grouped_linear(active, per_expert, width, h, quant=quant)  # down
    if cfg.family != "llama4":
        e.ew("pointwise_mul", pairs * h)  # scale by routing weight
    e.ew("pointwise_add", pairs * h)  # combine (index_add / unpermute-reduce)
    if cfg.num_shared_experts:
        shared_width = (cfg.shared_expert_intermediate_size or width) * cfg.num_shared_experts
        shared_quant = cfg.fp8_scope == "all_linear"
        act = "gelu" if cfg.hidden_act.startswith("gelu") else "silu"
        gated_mlp(e, t, h, shared_width, act, quant=shared_quant)
        e.ew("pointwise_add", t * h)


def mla_attention(e: Emitter, cfg: ModelConfig, st: Step, backend: str) -> None:
    """DeepSeek-V3 multi-head latent attention.

    ``eager``/``sdpa`` and every prefill: the naive form (K and V decompressed per head with
    ``kv_b_proj``; HF caches them decompressed). ``flash`` decode: the absorbed form that vLLM
    and FlashMLA run, attending over the compressed latent cache (one KV head of width
    kv_lora_rank + rope) with W_UK/W_UV applied as per-head batched GEMMs.
    """
    assert cfg.kv_lora_rank is not None
    h, heads = cfg.hidden, cfg.heads
    rope = cfg.qk_rope_head_dim or 0
    nope = cfg.qk_nope_head_dim or 0
    v = cfg.v_head_dim or 0
    lora = cfg.kv_lora_rank
    qk = nope + rope
    t = st.tokens
    quant = cfg.fp8_scope == "all_linear"
    if cfg.q_lora_rank:
        e.linear(t, h, cfg.q_lora_rank, quant=quant)
        norm(e, cfg, t, cfg.q_lora_rank)
        e.linear(t, cfg.q_lora_rank, heads * qk, quant=quant)
    else:
        e.linear(t, h, heads * qk, quant=quant)
    e.linear(t, h, lora + rope, quant=quant)  # kv_a_proj_with_mqa
    norm(e, cfg, t, lora)  # kv_a_layernorm
    apply_rotary(e, t, heads, 1, rope)
    if backend == "flash" and st.phase == "decode":
        e.copy(t * (lora + rope))  # latent cache write
        e.bmm(heads, t, lora, nope)  # q_nope @ W_UK
        attend(
            e,
            st,
            backend="flash",
            heads=heads,
            kv_heads=1,
            head_dim=lora + rope,
            head_dim_v=lora,
            paged=True,
        )
        e.bmm(heads, t, v, lora)  # @ W_UV
    else:
        kv_rows = st.batch * st.kv if backend == "flash" else t
        e.linear(kv_rows, lora, heads * (nope + v), quant=quant)  # kv_b_proj
        e.copy(t * heads * qk)  # cat(q_nope, q_pe)
        e.copy(kv_rows * heads * qk)  # cat(k_nope, k_pe expanded)
        if backend == "flash":
            e.copy(t * (lora + rope))
        else:
            kv_cache_write(e, cfg, st, backend, heads, qk)
        attend(
            e,
            st,
            backend=backend,
            heads=heads,
            kv_heads=heads,
            head_dim=qk,
            head_dim_v=v,
            paged=paged_decode(st, backend),
            style=EagerStyle(pre=("scalar_mul", "pointwise_add"), fp32_softmax=True),
        )
    e.linear(t, heads * v, h, quant=quant)
