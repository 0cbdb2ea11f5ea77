"""GPU memory of a served model and the largest running batch it leaves room for.

Per GPU (vLLM's accounting): ``gpu_memory_utilization`` (default 0.9) of the capacity is the
engine's; from it come the weights of the GPU's shard, the activation workspace of the largest
step (the chunked-prefill budget of batched tokens), the CUDA-graph pool, and what remains is KV
cache. A running sequence holds on average ``input + output/2`` tokens of KV cache (prompt, plus
half its generated tokens), so the running batch is capped at ``KV bytes / (that many tokens ×
bytes per token)``.

Weights by format: bf16 2 bytes a parameter; fp8 1 byte for the linears the checkpoint quantises
(plus block scales, 4 bytes per 128×128 block: < 0.03 %); mxfp4 experts 4.25 bits (4-bit values
and one 8-bit scale per 32), the rest bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.hardware.spec import GPUSpec
from joulecast.models.decoder import kv_cache_elements_per_token
from joulecast.models.params import count_params
from joulecast.models.registry import ModelConfig
from joulecast.serving.layout import Layout, gpu_shard
from joulecast.workload.ir import Precision

GPU_MEMORY_UTILIZATION = 0.9
# CUDA graphs captured for every batch size up to the largest: a few hundred MB (vLLM logs
# 0.3-1.5 GiB); the default is the middle of that range.
CUDA_GRAPH_POOL_BYTES = 0.75e9
MXFP4_BITS = 4.25
# vLLM's chunked-prefill budget of batched tokens per step (v3 setting).
MAX_BATCHED_TOKENS = 8192


@dataclass(frozen=True)
class ServingMemory:
    """Memory of one GPU of a replica, in bytes.

    Attributes:
        capacity_bytes: the part's memory.
        usable_bytes: ``gpu_memory_utilization`` of it.
        weights_bytes: this GPU's share of the weights.
        workspace_bytes: activations of the largest step plus the CUDA-graph pool.
        kv_bytes: what remains for KV cache (negative: the weights do not fit).
        kv_bytes_per_token: KV cache one token occupies on this GPU.
        tokens_per_sequence: mean KV tokens a running sequence holds.
        max_running_batch: sequences that fit at once (0: none).
    """

    capacity_bytes: float
    usable_bytes: float
    weights_bytes: float
    workspace_bytes: float
    kv_bytes: float
    kv_bytes_per_token: float
    tokens_per_sequence: float
    max_running_batch: int


def weight_bytes_total(cfg: ModelConfig, precision: str) -> float:
    """Bytes of the whole model's weights in ``precision`` (bf16, fp16, fp8, mxfp4)."""
    counts = count_params(cfg)
    total = float(counts.total - cfg.extra_params)
    if precision == "mxfp4":
        return counts.expert * MXFP4_BITS / 8 + (total - counts.expert) * 2.0
    if precision == "fp8":
        embed = counts.embedding * (1 if cfg.tie_word_embeddings else 2)
        return (total - embed) * 1.0 + embed * 2.0
    return total * (Precision.FP32.bytes if precision == "fp32" else 2.0)


def gpu_weight_bytes(cfg: ModelConfig, layout: Layout, precision: str) -> float:
    """One GPU's share: experts over ``ep`` (or split ``tp`` ways), the rest over ``tp``."""
    total = weight_bytes_total(cfg, precision)
    counts = count_params(cfg)
    expert_share = counts.expert / max(1.0, float(counts.total - cfg.extra_params))
    experts = total * expert_share
    rest = total - experts
    return rest / layout.tp + experts / (layout.ep if layout.ep > 1 else layout.tp)


def serving_memory(
    cfg: ModelConfig,
    gpu: GPUSpec,
    layout: Layout,
    precision: str,
    input_tokens: int,
    output_tokens: int,
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
) -> ServingMemory:
    """Memory of one GPU of a replica and the running batch it allows."""
    shard = gpu_shard(cfg, layout)
    capacity = gpu.memory_capacity_bytes
    usable = capacity * gpu_memory_utilization
    weights = gpu_weight_bytes(cfg, layout, precision)
    act_bytes = 2.0
    width = max(
        shard.heads * shard.dim_head + 2 * shard.kv_heads * shard.dim_head,
        2 * (shard.expert_width if shard.is_moe else shard.ffn),
    )
    workspace = (
        (4 * shard.hidden + width) * MAX_BATCHED_TOKENS * act_bytes
        + MAX_BATCHED_TOKENS * shard.vocab * 4.0 / 16  # logits of the sampled rows
        + CUDA_GRAPH_POOL_BYTES
    )
    tokens_per_seq = input_tokens + output_tokens / 2
    kv_per_token = kv_cache_elements_per_token(shard, "flash", int(tokens_per_seq)) * act_bytes
    kv = usable - weights - workspace
    # Data-parallel attention groups keep their own sequences: each GPU holds 1/dp of them.
    per_seq = kv_per_token * tokens_per_seq
    fit = int(kv // per_seq) * layout.dp if kv > 0 and per_seq > 0 else 0
    return ServingMemory(
        capacity_bytes=capacity,
        usable_bytes=usable,
        weights_bytes=weights,
        workspace_bytes=workspace,
        kv_bytes=kv,
        kv_bytes_per_token=kv_per_token,
        tokens_per_sequence=tokens_per_seq,
        max_running_batch=fit,
    )
