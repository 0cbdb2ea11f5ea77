"""Encoders: BERT (``BertModel`` with pooler) and ViT (``ViTModel`` with pooler).

Eager HF attention: BERT divides the scores by sqrt(d), adds the padding mask and takes a
softmax in the activation dtype; ViT multiplies by the scale and takes an fp32 softmax.
"""

from __future__ import annotations

from joulecast.models.graph import EagerStyle, Emitter, attention_core
from joulecast.models.registry import ModelConfig

#: The EnergAIzer ViT traces show a 768-wide pooler on ViT-Large: the artifact built a default
#: ``ViTConfig()`` and overrode the dims afterwards, so ``pooler_output_size`` kept the base
#: model's 768. Used in trace mode only; a real ViT-L pooler is hidden_size wide.
ENERGAIZER_VIT_POOLER = 768


def _layer(
    e: Emitter,
    cfg: ModelConfig,
    batch: int,
    seq: int,
    backend: str,
    style: EagerStyle,
    pre_ln: bool,
) -> None:
    h, heads, hd = cfg.hidden, cfg.heads, cfg.dim_head
    t = batch * seq
    if pre_ln:
        e.layernorm(t, h)
    for _ in range(3):
        e.linear(t, h, h)
    attention_core(
        e,
        backend=backend,
        batch=batch,
        seq_q=seq,
        seq_kv=seq,
        heads=heads,
        kv_heads=heads,
        head_dim=hd,
        causal=False,
        style=style,
    )
    e.linear(t, h, h)
    e.ew("pointwise_add", t * h)
    e.layernorm(t, h)
    e.linear(t, h, cfg.ffn)
    e.ew("gelu", t * cfg.ffn)
    e.linear(t, cfg.ffn, h)
    e.ew("pointwise_add", t * h)
    if not pre_ln:
        e.layernorm(t, h)


def build_bert(cfg: ModelConfig, e: Emitter, batch: int, seq: int, backend: str) -> None:
    """BertModel forward (embeddings, post-LN layers, tanh pooler on the CLS token)."""
    h = cfg.hidden
    t = batch * seq
    e.embedding(t, h)  # word
    e.embedding(t, h)  # token type
    e.ew("pointwise_add", t * h)
    e.embedding(t, h)  # position
    e.ew("pointwise_add", t * h, missed=True)  # embeddings += position (in place)
    e.layernorm(t, h)
    if backend == "eager":
        e.ew("scalar_add", t, missed=True)  # 1.0 - mask
        e.ew("scalar_mul", t)  # * finfo.min
    style = EagerStyle(pre=("unspecified_scalar", "pointwise_add"))
    for _ in range(cfg.layers):
        _layer(e, cfg, batch, seq, backend, style, pre_ln=False)
    e.copy(batch * h)  # CLS token slice
    e.linear(batch, h, h)
    e.ew("tanh", batch * h)


def vit_tokens(cfg: ModelConfig, image_size: int) -> int:
    """Sequence length of a ViT: patches plus the CLS token."""
    assert cfg.patch_size is not None
    return (image_size // cfg.patch_size) ** 2 + 1


def build_vit(cfg: ModelConfig, e: Emitter, batch: int, image_size: int, backend: str) -> None:
    """ViTModel forward (patch conv, CLS, positions, pre-LN layers, final LN, pooler)."""
    assert cfg.patch_size is not None
    h = cfg.hidden
    seq = vit_tokens(cfg, image_size)
    t = batch * seq
    e.conv(batch, cfg.num_channels, h, image_size, cfg.patch_size, stride=cfg.patch_size)
    e.copy(batch * (seq - 1) * h)  # flatten(2).transpose(1, 2)
    e.copy(t * h)  # cat(cls, patches)
    e.ew("scalar_add", t * h)  # + position embeddings (broadcast over the batch)
    style = EagerStyle(pre=("scalar_mul",), fp32_softmax=True)
    for _ in range(cfg.layers):
        _layer(e, cfg, batch, seq, backend, style, pre_ln=True)
    e.layernorm(t, h)
    pooler = ENERGAIZER_VIT_POOLER if e.trace else h
    e.copy(batch * h)  # CLS token slice
    e.linear(batch, h, pooler)
    e.ew("tanh", batch * pooler)
