"""How a served model is laid out over GPUs: tensor, expert and data parallelism.

vLLM's semantics: ``num_gpus = tp × dp``; attention and dense layers are split ``tp`` ways
(heads, feed-forward width, vocabulary); with expert parallelism the routed experts are spread
over ``ep = tp × dp`` GPUs instead of being split ``tp`` ways. ML.ENERGY's rows with
``tensor_parallel = 1, expert_parallel = N`` on N GPUs ran vLLM's ``--enable-expert-parallel``
with ``-tp N``: attention split N ways, experts spread N ways (docs/serving.md).

:func:`gpu_shard` returns the :class:`ModelConfig` of what one GPU holds and runs, so the
model builders need no notion of parallelism: a TP shard is a narrower model, an EP shard is a
model whose GPU sees ``1/ep`` of the routed (token, expert) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from joulecast.errors import WorkloadError
from joulecast.models.registry import ModelConfig

MAX_GPUS = 64


@dataclass(frozen=True)
class Layout:
    """Parallelism of one serving replica.

    Attributes:
        num_gpus: GPUs of the replica.
        tp: tensor-parallel degree of attention and dense layers.
        ep: GPUs the routed experts are spread over (1: experts split ``tp`` ways instead).
        dp: data-parallel attention groups (each runs ``1/dp`` of the batch).
    """

    num_gpus: int
    tp: int
    ep: int
    dp: int


def resolve_layout(
    cfg: ModelConfig,
    num_gpus: int = 1,
    tp: int | None = None,
    ep: int | None = None,
    dp: int = 1,
) -> Layout:
    """Check and complete a parallelism request.

    ``tp`` defaults to ``num_gpus / dp``; ``ep`` > 1 needs an MoE model and equals ``tp × dp``
    (vLLM), and ``--ep N --tp 1`` on N GPUs is read as ML.ENERGY records it (attention ``tp = N``).

    Raises:
        WorkloadError: inconsistent degrees, or degrees the model cannot be split by (heads,
            experts), with what would work.
    """
    for name, value in (("num_gpus", num_gpus), ("dp", dp), ("tp", tp), ("ep", ep)):
        if value is not None and (not isinstance(value, int) or value < 1 or value > MAX_GPUS):
            raise WorkloadError(f"--{name.replace('_', '-')} must be 1..{MAX_GPUS} (got {value})")
    if num_gpus % dp:
        raise WorkloadError(f"--dp {dp} does not divide --num-gpus {num_gpus}")
    if ep is not None and ep > 1 and tp == 1 and dp == 1 and ep == num_gpus:
        tp = num_gpus  # ML.ENERGY's "tp 1, ep N": vLLM -tp N --enable-expert-parallel
    tp = tp if tp is not None else num_gpus // dp
    if tp * dp != num_gpus:
        raise WorkloadError(
            f"--num-gpus {num_gpus} must equal tp x dp ({tp} x {dp}); try --tp {num_gpus // dp}"
        )
    ep = ep if ep is not None else 1
    if ep > 1:
        if not cfg.is_moe:
            raise WorkloadError(f"{cfg.id} has no experts: --ep must be 1")
        if ep != tp * dp:
            raise WorkloadError(f"--ep must equal tp x dp = {tp * dp} (vLLM expert parallelism)")
        if ep > cfg.num_experts:
            raise WorkloadError(f"--ep {ep} exceeds the model's {cfg.num_experts} experts")
    heads = cfg.heads
    if heads and heads % tp:
        divisors = [d for d in range(1, min(heads, MAX_GPUS) + 1) if heads % d == 0]
        raise WorkloadError(
            f"--tp {tp} does not divide the {heads} attention heads of {cfg.id} "
            f"(possible: {', '.join(map(str, divisors))})"
        )
    return Layout(num_gpus=num_gpus, tp=tp, ep=ep, dp=dp)


def _split(value: int | None, parts: int) -> int | None:
    return None if value is None else max(1, -(-value // parts))


def gpu_shard(cfg: ModelConfig, layout: Layout) -> ModelConfig:
    """The part of ``cfg`` one GPU holds and runs under ``layout``."""
    tp = layout.tp
    if tp == 1 and layout.ep == 1:
        return cfg
    experts_split = layout.ep == 1  # without EP, every expert is split tp ways
    return msgspec.structs.replace(
        cfg,
        num_attention_heads=_split(cfg.num_attention_heads, tp),
        # KV heads are replicated when there are fewer than tp of them.
        num_key_value_heads=_split(cfg.num_key_value_heads, tp),
        head_dim=cfg.dim_head if cfg.heads else cfg.head_dim,
        intermediate_size=_split(cfg.intermediate_size, tp),
        intermediate_size_mlp=_split(cfg.intermediate_size_mlp, tp),
        moe_intermediate_size=_split(cfg.moe_intermediate_size, tp)
        if experts_split
        else (cfg.expert_width if cfg.is_moe else None),
        shared_expert_intermediate_size=_split(cfg.shared_expert_intermediate_size, tp),
        vocab_size=_split(cfg.vocab_size, tp),
        expert_parallel=layout.ep,
    )
