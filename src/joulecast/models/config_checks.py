"""Cross-field checks of model architectures: shapes that would build odd layers.

:class:`~joulecast.models.registry.ModelConfig` bounds each field on its own (sizes at most
:data:`~joulecast.schema.MAX_DIMENSION`, layers at most :data:`~joulecast.schema.MAX_LAYERS`);
these checks reject combinations: a hidden size that the heads do not divide, heads that the
key/value heads do not divide, top-k routing beyond the experts, CNN stage lists of different
lengths. Each problem is one readable clause naming the fields.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from joulecast.schema import MAX_LAYERS

if TYPE_CHECKING:
    from joulecast.models.registry import ModelConfig


def shape_problems(cfg: ModelConfig, *, moe_families: Collection[str]) -> list[str]:
    """Combinations of fields that would build layers of the wrong shape (empty if none).

    Args:
        cfg: the architecture (already checked field by field).
        moe_families: the families that route tokens to experts.
    """
    out: list[str] = []
    heads, kv, hidden = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size
    if heads and hidden and cfg.head_dim is None and not cfg.uses_mla and hidden % heads:
        out.append(
            f"hidden_size ({hidden}) must be divisible by num_attention_heads ({heads}) when "
            "head_dim is not given (each head is hidden_size / num_attention_heads wide)"
        )
    if heads and kv and heads % kv:
        out.append(
            f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv})"
        )
    if cfg.family in moe_families and cfg.num_experts < 1:
        out.append(f"a {cfg.family} model needs num_experts >= 1")
    if cfg.num_experts and not 1 <= cfg.num_experts_per_tok <= cfg.num_experts:
        out.append(
            f"num_experts_per_tok ({cfg.num_experts_per_tok}) must lie in [1, num_experts] = "
            f"[1, {cfg.num_experts}]"
        )
    for name in ("depths", "transformer_depths"):
        depths = getattr(cfg, name)
        if depths is not None and sum(depths) > MAX_LAYERS:
            out.append(f"{name} add up to {sum(depths):,} layers; at most {MAX_LAYERS:,}")
    if cfg.family == "resnet" and cfg.depths and cfg.hidden_sizes:
        if len(cfg.depths) != len(cfg.hidden_sizes):
            out.append(
                f"depths ({len(cfg.depths)} stages) and hidden_sizes ({len(cfg.hidden_sizes)}) "
                "must have the same length"
            )
        if min(cfg.hidden_sizes) < 4:
            out.append("hidden_sizes must be at least 4 (a bottleneck is a quarter as wide)")
    if cfg.family == "mobilevit":
        out += _mobilevit_problems(cfg)
    return out


def _mobilevit_problems(cfg: ModelConfig) -> list[str]:
    """MobileViT: 3 transformer stages, 7 neck widths, each stage width divisible by heads."""
    out: list[str] = []
    lengths = {
        "hidden_sizes": (cfg.hidden_sizes, 3),
        "transformer_depths": (cfg.transformer_depths, 3),
        "neck_hidden_sizes": (cfg.neck_hidden_sizes, 7),
    }
    for name, (values, n) in lengths.items():
        if values is not None and len(values) != n:
            out.append(f"a mobilevit model needs {n} {name} (got {len(values)})")
    heads = cfg.num_attention_heads
    if heads and cfg.hidden_sizes and any(h % heads for h in cfg.hidden_sizes):
        out.append(
            f"hidden_sizes {list(cfg.hidden_sizes)} must be divisible by num_attention_heads "
            f"({heads})"
        )
    return out
