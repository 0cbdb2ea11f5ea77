"""From "model, batch, sequence, phase, precision, attention back end" to a :class:`Workload`.

:func:`build_workload` is the front end of ``joulecast estimate --model``; it validates the
request (one-line :class:`~joulecast.errors.JoulecastError` on bad input) and dispatches to the
family builders. :func:`memory_breakdown` sizes weights, KV cache and activations so that the
estimator can refuse a request that does not fit the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Required, TypedDict, Unpack

from joulecast.errors import UnknownNameError, WorkloadError
from joulecast.models.cnn import build_mobilevit, build_resnet
from joulecast.models.decoder import Step, build_decoder, kv_cache_elements_per_token
from joulecast.models.encoder import build_bert, build_vit, vit_tokens
from joulecast.models.graph import Emitter, Numerics, numerics_for
from joulecast.models.params import count_params
from joulecast.models.registry import DECODER_FAMILIES, ModelConfig, load_model_config
from joulecast.workload.ir import Precision, Workload

Phase = Literal["prefill", "decode"]
Backend = Literal["eager", "sdpa", "flash"]
_BACKENDS = ("eager", "sdpa", "flash")


def _positive(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise WorkloadError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True, slots=True)
class Request:
    """A validated build request (resolved config, shapes, back end and numerics)."""

    cfg: ModelConfig
    batch: int
    seq: int
    past: int
    phase: Phase
    backend: Backend
    numerics: Numerics
    image_size: int | None
    trace: bool
    head: bool
    prefill: int = 0

    @property
    def step(self) -> Step:
        return Step(
            batch=self.batch, seq=self.seq, past=self.past, phase=self.phase, prefill=self.prefill
        )


def checkpoint_precision(cfg: ModelConfig) -> str:
    """The precision ``"auto"`` stands for: the checkpoint's own format (mxfp4 experts, which
    joulecast has no kernel model for, run as bf16)."""
    return "bf16" if cfg.weight_precision == "mxfp4" else cfg.weight_precision


def resolve_request(
    model: str | ModelConfig,
    *,
    batch: int,
    seq: int | None = None,
    phase: str = "prefill",
    context: int | None = None,
    precision: str = "bf16",
    attention: str | None = None,
    image_size: int | None = None,
    trace_mode: bool = False,
    lm_head: bool | None = None,
    prefill_tokens: int | None = None,
) -> Request:
    """Validate and normalise the arguments of :func:`build_workload`."""
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    _positive("batch", batch)
    _positive("prefill_tokens", prefill_tokens)
    _positive("seq", seq)
    _positive("image_size", image_size)
    if context is not None and (
        isinstance(context, bool) or not isinstance(context, int) or context < 0
    ):
        raise WorkloadError(f"context must be a non-negative integer, got {context!r}")
    if phase not in ("prefill", "decode"):
        raise WorkloadError(f"unknown phase '{phase}' (choose prefill or decode)")
    if str(precision).strip().lower() == "auto":
        precision = checkpoint_precision(cfg)
    num = numerics_for(precision)
    if attention is None:
        attention = "flash" if phase == "decode" else "eager"
    if attention not in _BACKENDS:
        raise WorkloadError(
            f"unknown attention back end '{attention}' (choose {', '.join(_BACKENDS)})"
        )
    backend: Backend = attention  # type: ignore[assignment]
    if cfg.is_vision:
        if seq is not None:
            raise WorkloadError(
                f"{cfg.id} is a vision model: it takes no seq (use image_size to change the "
                "input resolution)"
            )
        if phase != "prefill" or context:
            raise WorkloadError(f"{cfg.id} is a vision model: only a forward pass (prefill)")
        size = image_size or cfg.image_size
        if size is None:
            raise WorkloadError(f"{cfg.id}: no image size in the config; pass image_size")
        if cfg.family == "vit" and cfg.patch_size and size < cfg.patch_size:
            raise WorkloadError(f"image_size {size} is smaller than the patch ({cfg.patch_size})")
        return Request(cfg, batch, 1, 0, "prefill", backend, num, size, trace_mode, False)
    if image_size is not None:
        raise WorkloadError(f"{cfg.id} is a text model: image_size does not apply")
    if prefill_tokens is not None and (phase != "decode" or backend != "flash"):
        raise WorkloadError(
            "prefill tokens mix a prompt chunk into a decode step: they need phase decode and "
            "the flash attention back end (a serving engine)"
        )
    if phase == "decode":
        if not cfg.is_decoder:
            raise WorkloadError(f"{cfg.id} is an encoder: it has no decode phase")
        if context is None:
            raise WorkloadError(
                "decode needs context: the number of tokens already in the KV cache"
            )
        new = seq or 1
        past = context
    else:
        if seq is None:
            raise WorkloadError(f"{cfg.id}: prefill needs seq (tokens per sequence)")
        new, past = seq, context or 0
    # max_position_embeddings is not enforced: the EnergAIzer runs themselves use GPT-2 and
    # OPT beyond it (position tables enlarged), and rope models extrapolate.
    head = cfg.is_decoder and not trace_mode if lm_head is None else lm_head
    if head and not cfg.is_decoder:
        raise WorkloadError(f"{cfg.id} is an encoder: it has no LM head")
    return Request(
        cfg,
        batch,
        new,
        past,
        phase,  # type: ignore[arg-type]
        backend,
        num,
        None,
        trace_mode,
        head,
        prefill_tokens or 0,
    )


FamilyBuilder = Callable[["Request", Emitter], None]
_BUILDERS: dict[str, FamilyBuilder] = {}


def register_family(*families: str) -> Callable[[FamilyBuilder], FamilyBuilder]:
    """Register the graph builder of one or more model families (a decorator).

    Adding a family is one builder plus this registration (and the family's name in the
    config schema, :data:`joulecast.models.registry.Family`).
    """

    def decorate(builder: FamilyBuilder) -> FamilyBuilder:
        for family in families:
            _BUILDERS[family] = builder
        return builder

    return decorate


def builder_for(family: str) -> FamilyBuilder:
    """The graph builder of ``family``.

    Raises:
        UnknownNameError: no builder is registered for it (never another family's graph).
    """
    try:
        return _BUILDERS[family]
    except KeyError:
        raise UnknownNameError("model family", family, _BUILDERS) from None


def registered_families() -> frozenset[str]:
    """Families that have a graph builder."""
    return frozenset(_BUILDERS)


@register_family("bert")
def _bert(req: Request, e: Emitter) -> None:
    build_bert(req.cfg, e, req.batch, req.seq, req.backend)


@register_family("vit")
def _vit(req: Request, e: Emitter) -> None:
    assert req.image_size is not None
    build_vit(req.cfg, e, req.batch, req.image_size, req.backend)


@register_family("resnet")
def _resnet(req: Request, e: Emitter) -> None:
    assert req.image_size is not None
    build_resnet(req.cfg, e, req.batch, req.image_size)


@register_family("mobilevit")
def _mobilevit(req: Request, e: Emitter) -> None:
    assert req.image_size is not None
    build_mobilevit(req.cfg, e, req.batch, req.image_size, req.backend)


@register_family(*sorted(DECODER_FAMILIES))
def _decoder(req: Request, e: Emitter) -> None:
    build_decoder(req.cfg, e, req.step, req.backend, req.head)


def build_workload(
    model: str | ModelConfig,
    *,
    batch: int,
    seq: int | None = None,
    phase: Phase = "prefill",
    context: int | None = None,
    precision: str = "bf16",
    attention: Backend | None = None,
    image_size: int | None = None,
    trace_mode: bool = False,
    lm_head: bool | None = None,
    prefill_tokens: int | None = None,
) -> Workload:
    """Build the kernel sequence of one forward pass (prefill) or one decode step.

    Args:
        model: Hugging Face id or alias of a shipped model, or a :class:`ModelConfig`.
        batch: sequences (or images) processed together.
        seq: prefill: prompt tokens per sequence; decode: new tokens per sequence (default 1).
            Vision models take no seq.
        phase: "prefill" (whole prompt) or "decode" (one step against a KV cache).
        context: tokens already in the KV cache (required for decode; prefix for prefill).
        precision: fp32, bf16, fp16 or fp8 (fp8: linear layers in fp8, the rest in bf16), or
            "auto" for the checkpoint's format (mxfp4 experts run as bf16).
        attention: "eager" (HF bmm/softmax/bmm), "sdpa" (HF, one fused attention op) or
            "flash" (serving engine: fused kernels, paged KV cache). Default: eager for
            prefill, flash for decode.
        image_size: input resolution of a vision model (default: the config's).
        trace_mode: reproduce the EnergAIzer kernel lists (base model, no LM head, only the
            op types that tracer kept, its conventions).
        lm_head: add the LM head on the last position (default: decoders outside trace mode).
        prefill_tokens: decode with the flash back end only: prompt tokens a serving engine
            prefills in the same step (chunked prefill). They join every projection, MLP and
            norm and get their own causal attention; the step still emits ``batch`` tokens.

    Returns:
        The operator list; its name encodes the request.

    Raises:
        UnknownNameError: unknown model.
        WorkloadError: bad batch/seq/context/precision/phase/back end combination.
    """
    req = resolve_request(
        model,
        batch=batch,
        seq=seq,
        phase=phase,
        context=context,
        precision=precision,
        attention=attention,
        image_size=image_size,
        trace_mode=trace_mode,
        lm_head=lm_head,
        prefill_tokens=prefill_tokens,
    )
    cfg = req.cfg
    fused = req.backend == "flash" and cfg.family not in ("gpt2", "opt", "bert", "vit")
    e = Emitter(num=req.numerics, trace=req.trace, fused=fused and not req.trace)
    builder_for(cfg.family)(req, e)
    shape = (
        f"img{req.image_size}"
        if cfg.is_vision
        else f"s{req.seq}"
        + (f"_ctx{req.past}" if req.past else "")
        + (f"_pf{req.prefill}" if req.prefill else "")
    )
    name = f"{cfg.id}_{req.phase}_b{req.batch}_{shape}_{req.numerics.name}_{req.backend}" + (
        "_trace" if req.trace else ""
    )
    tokens = None if cfg.is_vision else req.batch * req.seq
    return Workload(name=name, ops=tuple(e.ops), tokens=tokens)


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """Device memory a request needs, in bytes."""

    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes


def _weight_bytes(cfg: ModelConfig, num: Numerics) -> float:
    counts = count_params(cfg)
    total = float(counts.total - cfg.extra_params)
    if num.gemm is not Precision.FP8:
        return total * num.act.bytes
    # fp8: the quantised linears at 1 byte, embeddings/LM head/norms/router at 2
    embed = counts.embedding * (1 if cfg.tie_word_embeddings else 2)
    if cfg.fp8_scope == "all_linear":
        quantised = total - embed
    elif cfg.fp8_scope == "mlp_inner_layers":
        quantised = float((cfg.layers - 2) * 3 * cfg.hidden * cfg.ffn)
    else:
        inner_moe = sum(1 for layer in range(1, cfg.layers - 1) if cfg.is_moe_layer(layer))
        moe_layers = max(1, sum(1 for layer in range(cfg.layers) if cfg.is_moe_layer(layer)))
        quantised = counts.expert * inner_moe / moe_layers
    return quantised * Precision.FP8.bytes + (total - quantised) * num.act.bytes


class MemoryRequest(TypedDict, total=False):
    """The arguments of :func:`build_workload` that size a request's memory."""

    batch: Required[int]
    seq: int | None
    phase: str
    context: int | None
    precision: str
    attention: str | None
    image_size: int | None
    prefill_tokens: int | None


def memory_breakdown(model: str | ModelConfig, **request: Unpack[MemoryRequest]) -> MemoryBreakdown:
    """Weights, KV cache and peak transient activations of a request (same arguments as
    :func:`build_workload`). Activations are the largest live tensors of one layer, not a
    allocator-exact figure."""
    req = resolve_request(model, **request)
    cfg, num = req.cfg, req.numerics
    act = num.act.bytes
    weights = _weight_bytes(cfg, num)
    if cfg.is_vision:
        assert req.image_size is not None
        if cfg.family == "vit":
            t = req.batch * vit_tokens(cfg, req.image_size)
            scores = req.batch * cfg.heads * vit_tokens(cfg, req.image_size) ** 2
            activations = (4 * t * cfg.hidden + t * cfg.ffn) * act + scores * (act + 4)
        else:
            # largest feature maps: stem output (and its BN/activation copies)
            first = (cfg.embedding_size or (cfg.neck_hidden_sizes or (16,))[0]) * 4
            activations = 3.0 * req.batch * first * (req.image_size // 2) ** 2 * act
        return MemoryBreakdown(weights, 0.0, activations)
    kv_tokens = req.past + req.seq
    kv = req.batch * kv_tokens * kv_cache_elements_per_token(cfg, req.backend, kv_tokens) * act
    if req.prefill:
        kv += req.prefill * kv_cache_elements_per_token(cfg, req.backend, req.prefill) * act
    t = req.batch * req.seq + req.prefill
    width = max(
        cfg.heads * cfg.dim_head + 2 * cfg.kv_heads * cfg.dim_head,
        2 * (cfg.intermediate_size_mlp or cfg.ffn)
        if not cfg.is_moe
        else 2 * cfg.expert_width * cfg.num_experts_per_tok,
    )
    activations = (4 * t * cfg.hidden + t * width) * act
    if req.backend == "eager":
        activations += req.batch * cfg.heads * req.seq * kv_tokens * (act + 4)
    if req.head:
        activations += req.batch * cfg.vocab * 4.0
    return MemoryBreakdown(weights, kv, activations)


def memory_required_bytes(model: str | ModelConfig, **request: Unpack[MemoryRequest]) -> float:
    """Total bytes (weights + KV cache + activations) a request needs on one GPU."""
    return memory_breakdown(model, **request).total_bytes
