"""Steady-state continuous batching of a vLLM-like engine: ITL, TTFT, throughput, J/token.

At ``max_num_seqs = B`` with mean input ``I`` and output ``O`` tokens, the engine keeps
``b = min(B, memory limit)`` sequences running. Every step decodes one token of each; in steady
state ``b / O`` requests finish per step and as many are admitted, each prefilled once in a
chunk batched into a step (chunked prefill, 8,192 batched tokens). So the mean step costs one
decode step of ``b`` sequences at the mean context ``I + O/2`` plus ``b / O`` times the marginal
cost of one prompt (a step with the prompt mixed in, minus the plain step), in time and in
energy, plus the tensor-parallel all-reduces (two per layer). Every step runs as a CUDA graph.
The engine's CPU work per step (scheduling, sampling, detokenisation: ``Host.serving_step_s``
plus ``serving_per_sequence_s`` per running sequence) overlaps the GPU's step under async
scheduling, so a step lasts the longer of the two; the GPUs idle while the CPU is behind.

Per GPU the step is the GPU's shard (:func:`joulecast.serving.layout.gpu_shard`), estimated by
:func:`joulecast.estimate`; power and energy are summed over the replica's GPUs. ITL (median) is
the mean step time, TTFT the prompt's chunked-prefill steps plus half a step of waiting.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from joulecast.coefficients.host import (
    Host,
    default_serving_host_id,
    load_host,
    resolve_host,
)
from joulecast.errors import WorkloadError
from joulecast.estimator import Estimate, estimate
from joulecast.hardware.spec import GPUSpec, resolve_gpu
from joulecast.models.build import build_workload
from joulecast.models.registry import ModelConfig, load_model_config
from joulecast.serving.comm import all_reduce_time_s
from joulecast.serving.layout import Layout, gpu_shard, resolve_layout
from joulecast.serving.memory import (
    GPU_MEMORY_UTILIZATION,
    MAX_BATCHED_TOKENS,
    ServingMemory,
    serving_memory,
)
from joulecast.serving.suggest import does_not_fit
from joulecast.workload.ir import Precision, Workload

MAX_TOKENS = 1_000_000
PRECISIONS = ("auto", "bf16", "fp16", "fp8", "mxfp4")


@dataclass(frozen=True)
class StepBreakdown:
    """Where one mean step's time goes (per GPU), in seconds.

    Attributes:
        decode_s: the decode step of the running batch.
        prefill_s: the admitted prompts' share (``b / O`` marginal prompt costs).
        comm_s: tensor-parallel all-reduces.
        gpu_s: the GPU's step (the three above).
        cpu_s: the serving engine's CPU work per step (overlapped with the GPU's).
        idle_power_w: one GPU's idle power at the step's clock (drawn while it waits).
    """

    decode_s: float
    prefill_s: float
    comm_s: float
    gpu_s: float
    cpu_s: float
    idle_power_w: float


@dataclass(frozen=True)
class ServeResult:
    """Steady-state serving of one replica (all its GPUs).

    Attributes:
        itl_ms: median inter-token latency (the mean step time).
        ttft_ms: time to first token of an admitted request.
        output_throughput_tok_s: output tokens per second of the replica.
        avg_power_w: board power summed over the replica's GPUs.
        energy_per_token_j: GPU energy per output token (prefills included).
        energy_per_request_j: ``energy_per_token_j × output_tokens``.
        running_batch: sequences running at once (``min(batch, max_batch)``).
        max_batch: sequences the KV cache holds at once.
    """

    model: str
    gpu: str
    num_gpus: int
    tp: int
    ep: int
    dp: int
    batch: int
    running_batch: int
    max_batch: int
    input_tokens: int
    output_tokens: int
    precision: str
    sm_clock_mhz: float
    throttled: bool
    itl_ms: float
    ttft_ms: float
    output_throughput_tok_s: float
    avg_power_w: float
    energy_per_token_j: float
    energy_per_request_j: float
    step: StepBreakdown
    memory: ServingMemory
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CLI's ``--format json``)."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def _precision(cfg: ModelConfig, precision: str) -> tuple[str, str]:
    """(weights format, compute format of the kernels)."""
    p = precision.strip().lower()
    if p not in PRECISIONS:
        raise WorkloadError(f"unsupported precision '{precision}' (use {', '.join(PRECISIONS)})")
    weights = cfg.weight_precision if p == "auto" else p
    return weights, weights


def _check_request(batch: int, input_tokens: int, output_tokens: int, cfg: ModelConfig) -> None:
    for name, value in (("batch", batch), ("input-tokens", input_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WorkloadError(f"--{name} must be a positive integer (got {value!r})")
    if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 1:
        raise WorkloadError(f"--output-tokens must be a positive integer (got {output_tokens!r})")
    if input_tokens + output_tokens > MAX_TOKENS:
        raise WorkloadError(f"input + output tokens must be at most {MAX_TOKENS:,}")
    limit = cfg.max_position_embeddings
    if limit and input_tokens + output_tokens > limit:
        raise WorkloadError(
            f"input + output ({input_tokens + output_tokens:,} tokens) exceed {cfg.id}'s context "
            f"of {limit:,} tokens"
        )
    if not cfg.is_decoder:
        raise WorkloadError(f"{cfg.id} does not generate tokens: serve needs a decoder model")


def serve(
    model: str | ModelConfig,
    gpu: str | GPUSpec,
    *,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    num_gpus: int = 1,
    tp: int | None = None,
    ep: int | None = None,
    dp: int = 1,
    precision: str = "auto",
    sm_clock_mhz: float | None = None,
    power_cap_w: float | None = None,
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
    host: str | Host | None = None,
) -> ServeResult:
    """Steady-state serving of ``model`` on ``num_gpus`` GPUs at ``max_num_seqs = batch``.

    Raises:
        WorkloadError: bad sizes, an impossible parallelism, a precision the part lacks, or a
            model that does not fit (the message says what would).
    """
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    spec = resolve_gpu(gpu)
    machine = resolve_host(host) if host is not None else load_host(default_serving_host_id())
    _check_request(batch, input_tokens, output_tokens, cfg)
    if not 0.1 <= gpu_memory_utilization <= 1.0:
        raise WorkloadError("gpu memory utilization must lie in [0.1, 1]")
    weights, compute = _precision(cfg, precision)
    if compute == "fp8" and not spec.supports_tensor(Precision.FP8):
        raise WorkloadError(f"{spec.id} has no fp8 tensor cores; use --precision bf16")
    layout = resolve_layout(cfg, num_gpus, tp, ep, dp)
    mem = serving_memory(
        cfg, spec, layout, weights, input_tokens, output_tokens, gpu_memory_utilization
    )
    if mem.max_running_batch < 1:
        raise does_not_fit(cfg, spec, layout, weights, input_tokens, output_tokens, mem)
    running = min(batch, mem.max_running_batch)
    notes: list[str] = []
    if running < batch:
        notes.append(f"KV cache holds {mem.max_running_batch} sequences: batch capped")
    if weights == "mxfp4":
        notes.append("mxfp4 experts: 4-bit weights; math at the part's next native rate")
    return _steady_state(
        cfg, spec, layout, running, batch, input_tokens, output_tokens, weights, compute,
        sm_clock_mhz, power_cap_w, machine, mem, tuple(notes),
    )  # fmt: skip


@dataclass(frozen=True)
class StepShape:
    """What one GPU of a replica runs per mean step (independent of the clock)."""

    cfg: ModelConfig
    spec: GPUSpec
    layout: Layout
    running: int
    input_tokens: int
    output_tokens: int
    compute: str

    @property
    def per_group(self) -> int:
        return math.ceil(self.running / self.layout.dp)

    @property
    def chunk(self) -> int:
        return min(self.input_tokens, MAX_BATCHED_TOKENS)

    def workload(self, prefill: int | None) -> Workload:
        """The plain decode step (``prefill=None``) or one with a prompt chunk mixed in."""
        context = max(1, round(self.input_tokens + self.output_tokens / 2))
        return _step_workload(self.cfg, self.layout, self.per_group, context, self.compute, prefill)


@lru_cache(maxsize=2048)
def _step_workload(
    cfg: ModelConfig, layout: Layout, batch: int, context: int, compute: str, prefill: int | None
) -> Workload:
    # Cached: a step does not depend on the GPU, so a search over GPU types builds it once
    # (and each GPU's compilation stays cached on the workload object).
    return build_workload(
        gpu_shard(cfg, layout),
        batch=batch,
        seq=1,
        phase="decode",
        context=context,
        precision=compute,
        attention="flash",
        lm_head=True,
        prefill_tokens=prefill,
    )


@dataclass(frozen=True)
class StepMetrics:
    """Steady-state metrics of a shape from its plain and mixed steps (floats or arrays)."""

    itl_s: Any
    ttft_s: Any
    throughput_tok_s: Any
    power_w: Any
    energy_per_token_j: Any
    decode_s: Any
    prefill_s: Any
    comm_s: float
    gpu_s: Any
    cpu_s: float


def combine(
    shape: StepShape, host: Host, plain_t: Any, plain_e: Any, idle_w: Any, mixed_t: Any,
    mixed_e: Any,
) -> StepMetrics:  # fmt: skip
    """The mean step from the plain and mixed steps' time and energy (one GPU); the same
    arithmetic for one clock (floats) and for a clock grid (arrays)."""
    layout = shape.layout
    per_gpu_prompts = shape.running / shape.output_tokens / layout.dp
    chunks = math.ceil(shape.input_tokens / shape.chunk)
    d_time = np.maximum(0.0, mixed_t - plain_t) * chunks
    d_energy = np.maximum(0.0, mixed_e - plain_e) * chunks
    tokens = shape.per_group + per_gpu_prompts * shape.input_tokens
    comm = (
        2
        * shape.cfg.layers
        * all_reduce_time_s(tokens * shape.cfg.hidden * 2.0, layout.tp, shape.spec)
    )
    gpu_s = plain_t + per_gpu_prompts * d_time + comm
    cpu_s = host.serving_step_time_s(shape.running / layout.dp)
    step_s = np.maximum(gpu_s, cpu_s)
    wait_s = step_s - plain_t - per_gpu_prompts * d_time
    energy = (plain_e + per_gpu_prompts * d_energy + wait_s * idle_w) * layout.num_gpus
    return StepMetrics(
        itl_s=step_s,
        ttft_s=mixed_t * chunks + step_s / 2,
        throughput_tok_s=shape.running / step_s,
        power_w=energy / step_s,
        energy_per_token_j=energy / shape.running,
        decode_s=plain_t,
        prefill_s=per_gpu_prompts * d_time,
        comm_s=comm,
        gpu_s=gpu_s,
        cpu_s=cpu_s,
    )


def _steady_state(
    cfg: ModelConfig,
    spec: GPUSpec,
    layout: Layout,
    running: int,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    weights: str,
    compute: str,
    sm_clock_mhz: float | None,
    power_cap_w: float | None,
    host: Host,
    mem: ServingMemory,
    notes: tuple[str, ...],
) -> ServeResult:
    shape = StepShape(cfg, spec, layout, running, input_tokens, output_tokens, compute)

    def step(prefill: int | None) -> Estimate:
        return estimate(
            shape.workload(prefill),
            spec,
            sm_clock_mhz=sm_clock_mhz,
            power_cap_w=power_cap_w,
            host=host,
            cuda_graphs=True,
            detail=False,
        )

    plain, mixed = step(None), step(shape.chunk)
    m = combine(
        shape, host, plain.time_s, plain.energy_j, plain.idle_power_w, mixed.time_s,
        mixed.energy_j,
    )  # fmt: skip
    per_token = float(m.energy_per_token_j)
    return ServeResult(
        model=cfg.id,
        gpu=spec.id,
        num_gpus=layout.num_gpus,
        tp=layout.tp,
        ep=layout.ep,
        dp=layout.dp,
        batch=batch,
        running_batch=running,
        max_batch=mem.max_running_batch,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        precision=weights,
        sm_clock_mhz=plain.sm_clock_mhz,
        throttled=plain.throttled or mixed.throttled,
        itl_ms=float(m.itl_s) * 1e3,
        ttft_ms=float(m.ttft_s) * 1e3,
        output_throughput_tok_s=float(m.throughput_tok_s),
        avg_power_w=float(m.power_w),
        energy_per_token_j=per_token,
        energy_per_request_j=per_token * output_tokens,
        step=StepBreakdown(
            float(m.decode_s),
            float(m.prefill_s),
            m.comm_s,
            float(m.gpu_s),
            m.cpu_s,
            plain.idle_power_w,
        ),
        memory=mem,
        notes=notes,
    )
