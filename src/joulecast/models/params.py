"""Parameter counts computed from the architecture (weights, biases and norm scales).

``total`` counts every weight of the modelled graph (plus ``extra_params`` of the config, e.g. a
vision tower that is not modelled); ``active`` counts the weights one token touches: all of a
dense model, and for a mixture of experts the shared parts plus ``num_experts_per_tok`` routed
experts. Vendors differ on whether "active" includes the input embedding (OpenAI's gpt-oss counts
do not); ``ModelConfig.active_params_include_embedding`` follows the vendor. The DeepSeek
multi-token-prediction module is not counted (it is not used for plain decoding).
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.models.registry import ModelConfig


@dataclass(frozen=True, slots=True)
class ParamCounts:
    """Parameter counts of one model, in parameters (not bytes)."""

    total: int
    active: int
    embedding: int
    expert: int

    @property
    def total_billions(self) -> float:
        return self.total / 1e9

    @property
    def active_billions(self) -> float:
        return self.active / 1e9


def _gated(cfg: ModelConfig) -> bool:
    return cfg.family not in ("bert", "vit", "gpt2", "opt")


def _mlp(cfg: ModelConfig, hidden: int, width: int, *, bias: bool) -> int:
    mats = 3 if _gated(cfg) else 2
    params = mats * hidden * width
    if bias:
        params += (2 * width if mats == 3 else width) + hidden
    return params


def _attention(cfg: ModelConfig) -> int:
    h = cfg.hidden
    if cfg.uses_mla:
        assert cfg.kv_lora_rank is not None
        rope = cfg.qk_rope_head_dim or 0
        nope = cfg.qk_nope_head_dim or 0
        v = cfg.v_head_dim or 0
        qk = nope + rope
        heads = cfg.heads
        if cfg.q_lora_rank:
            q = h * cfg.q_lora_rank + cfg.q_lora_rank + cfg.q_lora_rank * heads * qk
        else:
            q = h * heads * qk
        kv = h * (cfg.kv_lora_rank + rope) + cfg.kv_lora_rank
        kv += cfg.kv_lora_rank * heads * (nope + v)
        return q + kv + heads * v * h
    hd = cfg.dim_head
    q = h * cfg.heads * hd
    kv = 2 * h * cfg.kv_heads * hd
    o = cfg.heads * hd * h
    params = q + kv + o
    if cfg.attention_bias:
        params += cfg.heads * hd + 2 * cfg.kv_heads * hd
        if cfg.family in ("bert", "vit", "gpt2", "opt", "gpt_oss", "mobilevit"):
            params += h  # output projection bias
    if cfg.qk_norm and cfg.family != "llama4":
        params += 2 * hd
    if cfg.family == "gpt_oss":
        params += cfg.heads  # attention sinks
    return params


def _norms_per_layer(cfg: ModelConfig) -> int:
    h = cfg.hidden
    if cfg.family == "gemma3":
        return 4 * h
    if cfg.family in ("bert", "vit", "gpt2", "opt"):
        return 2 * 2 * h  # LayerNorm weight + bias, two per layer
    return 2 * h


def _transformer_counts(cfg: ModelConfig) -> ParamCounts:
    h = cfg.hidden
    embed = cfg.vocab * h if cfg.vocab_size else 0
    pos = 0
    if cfg.family == "gpt2":
        pos = (cfg.max_position_embeddings or 0) * h
    elif cfg.family == "opt":
        pos = ((cfg.max_position_embeddings or 0) + 2) * h
    elif cfg.family == "bert":
        pos = (cfg.max_position_embeddings or 0) * h + cfg.type_vocab_size * h + 2 * h
    total = embed + pos
    active = total
    expert_total = 0
    for layer in range(cfg.layers):
        common = _attention(cfg) + _norms_per_layer(cfg)
        if cfg.is_moe_layer(layer):
            e_width = cfg.expert_width
            bias = cfg.family == "gpt_oss"
            one_expert = _mlp(cfg, h, e_width, bias=bias)
            router = h * cfg.num_experts + (cfg.num_experts if bias else 0)
            if cfg.family == "deepseek_v3":
                router += cfg.num_experts  # e_score_correction_bias
            shared_width = cfg.shared_expert_intermediate_size or e_width
            shared = cfg.num_shared_experts * _mlp(cfg, h, shared_width, bias=False)
            total += common + router + shared + cfg.num_experts * one_expert
            active += common + router + shared + cfg.num_experts_per_tok * one_expert
            expert_total += cfg.num_experts * one_expert
        else:
            bias = cfg.family in ("bert", "gpt2", "opt")
            mlp = _mlp(cfg, h, cfg.dense_ffn_width(layer), bias=bias)
            total += common + mlp
            active += common + mlp
    final_norm = 0 if cfg.family == "bert" else (2 * h if cfg.family in ("gpt2", "opt") else h)
    total += final_norm
    active += final_norm
    if cfg.family == "bert":
        total += h * h + h  # pooler
        active += h * h + h
    if not cfg.tie_word_embeddings and cfg.family not in ("bert",):
        total += embed
        active += embed
    if not cfg.active_params_include_embedding:
        active -= embed
    return ParamCounts(
        total=total + cfg.extra_params, active=active, embedding=embed, expert=expert_total
    )


def _vit_counts(cfg: ModelConfig) -> ParamCounts:
    assert cfg.image_size is not None and cfg.patch_size is not None
    h = cfg.hidden
    patches = (cfg.image_size // cfg.patch_size) ** 2
    embed = cfg.num_channels * cfg.patch_size**2 * h + h + h + (patches + 1) * h
    per_layer = _attention(cfg) + _norms_per_layer(cfg) + _mlp(cfg, h, cfg.ffn, bias=True)
    total = embed + cfg.layers * per_layer + 2 * h + h * h + h  # final LN + pooler
    return ParamCounts(total=total, active=total, embedding=embed, expert=0)


def _conv(c_in: int, c_out: int, k: int, groups: int = 1, bias: bool = False) -> int:
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def _resnet_counts(cfg: ModelConfig) -> ParamCounts:
    assert cfg.depths is not None and cfg.hidden_sizes is not None
    assert cfg.embedding_size is not None
    stem = cfg.embedding_size
    total = _conv(cfg.num_channels, stem, 7) + 2 * stem
    c_in = stem
    for depth, c_out in zip(cfg.depths, cfg.hidden_sizes, strict=True):
        width = c_out // 4
        for block in range(depth):
            total += _conv(c_in, width, 1) + 2 * width
            total += _conv(width, width, 3) + 2 * width
            total += _conv(width, c_out, 1) + 2 * c_out
            if block == 0:
                total += _conv(c_in, c_out, 1) + 2 * c_out
            c_in = c_out
    total += c_in * cfg.num_labels + cfg.num_labels
    return ParamCounts(total=total, active=total, embedding=0, expert=0)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` as MobileNet/MobileViT do."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


def _mobilevit_counts(cfg: ModelConfig) -> ParamCounts:
    assert cfg.neck_hidden_sizes is not None and cfg.hidden_sizes is not None
    assert cfg.transformer_depths is not None
    neck = cfg.neck_hidden_sizes
    k = cfg.conv_kernel_size

    def conv_bn(c_in: int, c_out: int, kk: int, groups: int = 1) -> int:
        return _conv(c_in, c_out, kk, groups) + 2 * c_out

    def inverted(c_in: int, c_out: int) -> int:
        mid = make_divisible(round(c_in * cfg.expand_ratio))
        return conv_bn(c_in, mid, 1) + conv_bn(mid, mid, 3, groups=mid) + conv_bn(mid, c_out, 1)

    total = conv_bn(cfg.num_channels, neck[0], 3)
    total += inverted(neck[0], neck[1])
    total += inverted(neck[1], neck[2]) + 2 * inverted(neck[2], neck[2])
    for stage, (hidden, depth) in enumerate(
        zip(cfg.hidden_sizes, cfg.transformer_depths, strict=True)
    ):
        c_in, c_out = neck[2 + stage], neck[3 + stage]
        total += inverted(c_in, c_out)
        total += conv_bn(c_out, c_out, k) + _conv(c_out, hidden, 1)
        ffn = int(hidden * cfg.mlp_ratio)
        per_layer = 4 * (hidden * hidden + hidden) + 2 * 2 * hidden
        per_layer += hidden * ffn + ffn + ffn * hidden + hidden
        total += depth * per_layer + 2 * hidden
        total += conv_bn(hidden, c_out, 1) + conv_bn(2 * c_out, c_out, k)
    total += conv_bn(neck[5], neck[6], 1)
    total += neck[6] * cfg.num_labels + cfg.num_labels
    return ParamCounts(total=total, active=total, embedding=0, expert=0)


def count_params(cfg: ModelConfig) -> ParamCounts:
    """Total and active parameter counts of ``cfg``, computed from its architecture."""
    if cfg.family == "resnet":
        return _resnet_counts(cfg)
    if cfg.family == "mobilevit":
        return _mobilevit_counts(cfg)
    if cfg.family == "vit":
        return _vit_counts(cfg)
    return _transformer_counts(cfg)
