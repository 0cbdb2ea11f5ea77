"""Graph builders: ops per phase, back end and precision; bad input; memory sizing."""

from __future__ import annotations

import pytest

from joulecast.errors import JoulecastError, UnknownNameError, WorkloadError
from joulecast.models.build import build_workload, memory_breakdown, memory_required_bytes
from joulecast.models.moe import expert_load
from joulecast.models.params import count_params
from joulecast.models.registry import load_model_config, model_ids
from joulecast.workload.ir import (
    Attention,
    Conv2d,
    Copy,
    Elementwise,
    Embedding,
    Gemm,
    Precision,
    Reduction,
    RMSNorm,
    Softmax,
    Workload,
)

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _of(w: Workload, cls: type) -> list:  # type: ignore[type-arg]
    return [op for op in w.ops if isinstance(op, cls)]


@pytest.mark.parametrize("model_id", model_ids())
def test_every_model_builds_every_way(model_id: str) -> None:
    cfg = load_model_config(model_id)
    if cfg.is_vision:
        for precision in ("fp32", "bf16", "fp16", "fp8"):
            assert build_workload(model_id, batch=2, precision=precision).flops > 0
        return
    phases = ("prefill", "decode") if cfg.is_decoder else ("prefill",)
    for phase in phases:
        for attention in ("eager", "sdpa", "flash"):
            w = build_workload(
                model_id,
                batch=2,
                seq=64 if phase == "prefill" else None,
                context=256 if phase == "decode" else None,
                phase=phase,
                attention=attention,
            )
            assert w.flops > 0 and len(w) > cfg.layers


def test_llama_eager_prefill_has_what_eager_launches() -> None:
    cfg = load_model_config(LLAMA)
    w = build_workload(LLAMA, batch=2, seq=128)
    t = 2 * 128
    assert len(_of(w, Embedding)) == 1
    means = [op for op in _of(w, Reduction) if op.cols == cfg.hidden]
    assert len(means) == 2 * cfg.layers + 1  # RMSNorm means: two per layer + final
    rsqrt = [op for op in _of(w, Elementwise) if op.elements == t and op.op == "other"]
    assert len(rsqrt) == 2 * cfg.layers + 1
    casts = [op for op in _of(w, Elementwise) if op.op == "cast"]
    assert casts, "fp32 norm/softmax casts missing"
    assert _of(w, Copy), "transpose/repeat_kv copies missing"
    softmax = _of(w, Softmax)
    assert len(softmax) == cfg.layers and all(s.precision is Precision.FP32 for s in softmax)
    head = [g for g in _of(w, Gemm) if g.n == cfg.vocab]
    assert len(head) == 1 and head[0].m == 2  # last position of each sequence
    assert not _of(w, Attention)


def test_trace_mode_drops_untraced_ops() -> None:
    w = build_workload(LLAMA, batch=1, seq=128, trace_mode=True)
    for cls in (Embedding, Copy, Reduction):
        assert not _of(w, cls)
    assert not [g for g in _of(w, Gemm) if g.n == 128256]
    assert all(
        op.op != "cast" or op.precision is not op.out_precision for op in _of(w, Elementwise)
    )


def test_gpt2_radd_bug_only_in_trace_mode() -> None:
    traced = build_workload("gpt2", batch=1, seq=64, trace_mode=True)
    real = build_workload("gpt2", batch=1, seq=64)
    t_ffn = 64 * 3072
    assert not [
        op for op in _of(traced, Elementwise) if op.op == "scalar_add" and op.elements == t_ffn
    ]
    assert (
        len([op for op in _of(real, Elementwise) if op.op == "scalar_add" and op.elements == t_ffn])
        == 12
    )


def test_sdpa_and_flash_fuse_attention() -> None:
    cfg = load_model_config(LLAMA)
    sdpa = build_workload(LLAMA, batch=2, seq=128, attention="sdpa")
    attn = _of(sdpa, Attention)
    assert len(attn) == cfg.layers and not _of(sdpa, Softmax)
    assert all(a.causal and a.kv_heads == 8 and not a.paged for a in attn)
    flash = build_workload(LLAMA, batch=2, seq=128, attention="flash")
    assert len(_of(flash, RMSNorm)) == 2 * cfg.layers + 1  # fused norms
    assert len(flash) < len(sdpa)


def test_decode_is_one_token_against_the_cache() -> None:
    cfg = load_model_config(LLAMA)
    w = build_workload(LLAMA, batch=16, phase="decode", context=2000)
    attn = _of(w, Attention)
    assert len(attn) == cfg.layers
    assert all(a.seq_q == 1 and a.seq_kv == 2001 and a.paged and a.batch == 16 for a in attn)
    linears = [g for g in _of(w, Gemm) if g.batch == 1]
    assert all(g.m == 16 for g in linears)
    # one decode step reads every weight once: FLOPs ~ 2 x params x tokens
    assert w.flops == pytest.approx(2 * count_params(cfg).total * 16, rel=0.1)
    eager = build_workload(LLAMA, batch=16, phase="decode", context=2000, attention="eager")
    scores = [g for g in _of(eager, Gemm) if g.batch == 16 * cfg.heads]
    assert {(g.m, g.n) for g in scores} == {(1, 2001), (1, 128)}
    cache_copies = [c for c in _of(eager, Copy) if c.elements == 16 * 8 * 2001 * 128]
    assert len(cache_copies) >= 2 * cfg.layers  # DynamicCache cat of K and V


def test_sliding_windows_reach_flash_attention() -> None:
    w = build_workload("google/gemma-3-12b-it", batch=1, seq=4096, attention="flash")
    windows = [a.window for a in _of(w, Attention)]
    assert windows.count(1024) == 40 and windows.count(None) == 8
    oss = build_workload("openai/gpt-oss-20b", batch=1, phase="decode", context=4096)
    assert [a.window for a in _of(oss, Attention)][:2] == [128, None]


def test_fp8_keeps_attention_and_norms_in_bf16() -> None:
    cfg = load_model_config(LLAMA)
    w = build_workload(LLAMA, batch=4, seq=256, precision="fp8", attention="sdpa")
    gemms = _of(w, Gemm)
    fp8 = [g for g in gemms if g.precision is Precision.FP8]
    assert len(fp8) == 7 * cfg.layers
    assert all(g.out_precision is Precision.BF16 for g in fp8)
    head = [g for g in gemms if g.n == cfg.vocab]
    assert head[0].precision is Precision.BF16
    assert all(a.precision is Precision.BF16 for a in _of(w, Attention))
    quant = [e for e in _of(w, Elementwise) if e.out_precision is Precision.FP8]
    assert len(quant) == len(fp8)


def test_fp8_checkpoint_scopes() -> None:
    w = build_workload(
        "meta-llama/Llama-3.1-405B-Instruct-FP8",
        batch=1,
        seq=16,
        precision="auto",
        attention="flash",
    )
    fp8 = [g for g in _of(w, Gemm) if g.precision is Precision.FP8]
    assert len(fp8) == 2 * (126 - 2)  # merged gate/up + down of the inner layers only


def test_fp32_runs_gemms_on_cuda_cores_and_convs_as_tf32() -> None:
    w = build_workload("bert-large-uncased", batch=1, seq=128, precision="fp32")
    assert all(not g.tensor_core and g.precision is Precision.FP32 for g in _of(w, Gemm))
    assert not [e for e in _of(w, Elementwise) if e.op == "cast"]
    r = build_workload("resnet101", batch=1, precision="fp32")
    assert all(c.precision is Precision.TF32 and c.tensor_core for c in _of(r, Conv2d))


def test_vision_image_size() -> None:
    base = build_workload("google/vit-large-patch16-224", batch=2)
    big = build_workload("google/vit-large-patch16-224", batch=2, image_size=384)
    assert any(g.n == 577 or g.m == 577 for g in _of(big, Gemm))
    assert big.flops > 2.5 * base.flops
    dw = [c for c in _of(build_workload("mobilevit-small", batch=1), Conv2d) if c.groups > 1]
    assert dw and all(c.groups == c.in_channels for c in dw)
    traced = build_workload("mobilevit-small", batch=1, trace_mode=True)
    assert all(c.groups == 1 for c in _of(traced, Conv2d))


def test_moe_expert_load() -> None:
    assert expert_load(1, 128, 8) == (8, 1)
    assert expert_load(2048, 128, 8) == (128, 128)
    # Uniform routing: 16 decode tokens top-8 of 128 touch E·(1-(1-k/E)^T) ≈ 82 experts, not 128.
    assert expert_load(16, 128, 8) == (82, 2)
    assert expert_load(8, 128, 8) == (52, 2)
    assert expert_load(3, 8, 2) == (5, 2)
    w = build_workload("Qwen/Qwen3-30B-A3B-Instruct-2507", batch=4, seq=512, attention="sdpa")
    grouped = [g for g in _of(w, Gemm) if g.batch > 1 and g.k in (2048, 768)]
    assert grouped and all(g.batch == 128 and g.m == 128 for g in grouped)
    d = build_workload("Qwen/Qwen3-30B-A3B-Instruct-2507", batch=1, phase="decode", context=100)
    grouped = [g for g in _of(d, Gemm) if g.batch > 1 and g.k in (2048, 768)]
    assert grouped and all(g.batch == 8 and g.m == 1 for g in grouped)
    routers = [g for g in _of(d, Gemm) if g.n == 128 and g.k == 2048]
    assert len(routers) == 48


def test_deepseek_mla_decode_uses_latent_cache() -> None:
    w = build_workload(
        "deepseek-ai/DeepSeek-V3.1", batch=8, phase="decode", context=1000, precision="auto"
    )
    attn = _of(w, Attention)
    assert len(attn) == 61
    assert all(a.kv_heads == 1 and a.head_dim == 576 and a.v_dim == 512 and a.paged for a in attn)
    prefill = build_workload("deepseek-ai/DeepSeek-V3.1", batch=1, seq=256, attention="sdpa")
    assert all(a.head_dim == 192 and a.v_dim == 128 for a in _of(prefill, Attention))
    # one shared expert per MoE layer (flash graph: gate and up merged, 2 x 2048 wide)
    shared = [g for g in _of(w, Gemm) if g.batch == 1 and g.n == 2 * 2048 and g.k == 7168]
    assert len(shared) == 61 - 3


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"batch": 0, "seq": 8}, "batch must be a positive integer"),
        ({"batch": 1, "seq": -3}, "seq must be a positive integer"),
        ({"batch": 1, "phase": "decode"}, "decode needs context"),
        ({"batch": 1, "seq": 8, "precision": "int4"}, "unsupported precision 'int4'"),
        ({"batch": 1, "seq": 8, "attention": "paged"}, "unknown attention back end"),
        ({"batch": 1, "seq": 8, "phase": "generate"}, "unknown phase"),
        ({"batch": 1}, "prefill needs seq"),
        ({"batch": 1, "seq": 8, "context": -1}, "context must be"),
    ],
)
def test_bad_input_one_line_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(WorkloadError) as info:
        build_workload(LLAMA, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_bad_model_inputs() -> None:
    with pytest.raises(WorkloadError, match="takes no seq"):
        build_workload("resnet101", batch=1, seq=128)
    with pytest.raises(WorkloadError, match="no decode phase"):
        build_workload("bert-large-uncased", batch=1, phase="decode", context=8)
    with pytest.raises(UnknownNameError, match="did you mean"):
        build_workload("gpt-3", batch=1, seq=8)
    assert issubclass(UnknownNameError, JoulecastError)


def test_memory() -> None:
    big = memory_breakdown("meta-llama/Llama-3.1-405B-Instruct", batch=1, seq=128)
    assert big.weights_bytes > 800e9
    fp8 = memory_breakdown(
        "meta-llama/Llama-3.1-405B-Instruct-FP8", batch=1, seq=128, precision="fp8"
    )
    assert 0.5 * big.weights_bytes < fp8.weights_bytes < 0.8 * big.weights_bytes
    short = memory_breakdown(LLAMA, batch=8, phase="decode", context=1000)
    long = memory_breakdown(LLAMA, batch=8, phase="decode", context=4000)
    # 32 layers x 2 x 8 heads x 128 x 2 bytes = 128 KiB per token
    assert short.kv_cache_bytes == pytest.approx(8 * 1001 * 131072)
    assert long.kv_cache_bytes > 3.9 * short.kv_cache_bytes
    assert memory_required_bytes(LLAMA, batch=1, seq=16) == pytest.approx(
        memory_breakdown(LLAMA, batch=1, seq=16).total_bytes
    )
    mla = memory_breakdown("deepseek-ai/DeepSeek-V3.1", batch=1, phase="decode", context=999)
    assert mla.kv_cache_bytes == pytest.approx(1000 * 61 * 576 * 2)


def test_mixed_step_adds_prompt_tokens_to_every_projection() -> None:
    plain = build_workload("llama-3.1-8b", batch=16, phase="decode", context=512)
    mixed = build_workload(
        "llama-3.1-8b", batch=16, phase="decode", context=512, prefill_tokens=300
    )
    assert mixed.name.endswith("_ctx512_pf300_bf16_flash")
    assert mixed.tokens == plain.tokens == 16  # the step still emits one token per sequence
    # Every linear layer but the LM head now runs 16 + 300 rows.
    plain_rows = sorted({g.m for g in _of(plain, Gemm)})
    mixed_rows = sorted({g.m for g in _of(mixed, Gemm)})
    assert 316 in mixed_rows and 316 not in plain_rows
    # One more attention per layer: the prompt chunk, causal over itself, not paged.
    attn_plain, attn_mixed = _of(plain, Attention), _of(mixed, Attention)
    assert len(attn_mixed) == 2 * len(attn_plain)
    chunk = [a for a in attn_mixed if a.seq_q == 300]
    assert chunk and all(a.batch == 1 and a.seq_kv == 300 for a in chunk)
    more = memory_breakdown(
        "llama-3.1-8b", batch=16, phase="decode", context=512, prefill_tokens=300
    )
    less = memory_breakdown("llama-3.1-8b", batch=16, phase="decode", context=512)
    assert more.kv_cache_bytes > less.kv_cache_bytes
    assert more.activation_bytes > less.activation_bytes


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq": 128},  # prefill phase
        {"phase": "decode", "context": 64, "attention": "eager"},
        {"phase": "decode", "context": 64, "prefill_tokens": 0},
    ],
)
def test_mixed_step_bad_requests(kwargs: dict) -> None:  # type: ignore[type-arg]
    args = {"prefill_tokens": 32, **kwargs}
    with pytest.raises(WorkloadError):
        build_workload("llama-3.1-8b", batch=4, **args)
