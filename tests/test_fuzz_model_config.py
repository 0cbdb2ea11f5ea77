"""Fuzzing model configs (joulecast YAML and Hugging Face config.json): any file gives a
bounded, consistent architecture or one SpecError, and any accepted architecture builds a pass
(or says why not in one line) whose estimate is finite.

``JOULECAST_FUZZ_EXAMPLES`` raises the number of examples per test (default 300).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from fuzzing import FUZZ, one_line
from joulecast.errors import JoulecastError, SpecError
from joulecast.estimator import estimate
from joulecast.models.build import build_workload, memory_required_bytes
from joulecast.models.registry import (
    ModelConfig,
    load_model_config,
    model_config_from_file,
    parse_hf_config,
)
from joulecast.schema import MAX_DIMENSION, MAX_LAYERS

MODEL_TYPES = ["llama", "qwen3", "gpt2", "opt", "bert", "mixtral", "deepseek_v3", "gemma3"]
MODEL_TYPES += ["gpt_oss", "qwen3_moe", "llama4", "mistral", "vit", "resnet", "mobilevit", "rwkv"]
HF_KEYS = sorted(
    {
        *ModelConfig.__struct_fields__,
        "n_layer",
        "n_embd",
        "n_head",
        "n_inner",
        "ffn_dim",
        "num_local_experts",
        "n_routed_experts",
        "torch_dtype",
        "quantization_config",
        "text_config",
        "moe_layer_freq",
    }
    - {"id", "family", "source", "aliases"}
)
numbers = st.one_of(
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=-(2**40), max_value=2**70),
    st.sampled_from([0, MAX_DIMENSION, MAX_DIMENSION + 1, 4_000_000, MAX_LAYERS + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([64.0, 1e308, 0.5]),
)
values = st.one_of(
    numbers,
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["bfloat16", "float32", "silu", "gelu"]),
    st.lists(numbers, max_size=5),
    st.fixed_dictionaries({"quant_method": st.sampled_from(["fp8", "mxfp4", "awq"])}),
)


def check_config(cfg: ModelConfig) -> None:
    """An accepted config is bounded and consistent."""
    for name, value in msgspec.structs.asdict(cfg).items():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and name != "extra_params":
                assert 0 <= item <= MAX_DIMENSION, (name, value)
            if isinstance(item, float):
                assert math.isfinite(item), (name, value)
    assert cfg.num_hidden_layers is None or cfg.num_hidden_layers <= MAX_LAYERS
    if cfg.heads and cfg.hidden_size and cfg.head_dim is None and not cfg.uses_mla:
        assert cfg.hidden_size % cfg.heads == 0
    if cfg.heads and cfg.num_key_value_heads:
        assert cfg.heads % cfg.num_key_value_heads == 0


def parse_or_error(data: Any) -> ModelConfig | None:
    try:
        cfg = parse_hf_config(data, name="fuzz")
    except JoulecastError as exc:
        event("rejected")
        assert one_line(exc), str(exc)
        return None
    event("accepted")
    check_config(cfg)
    return cfg


@FUZZ
@given(
    model_type=st.sampled_from(MODEL_TYPES),
    fields=st.dictionaries(st.sampled_from(HF_KEYS), values, max_size=14),
)
def test_any_hf_config_parses_or_is_one_line_error(model_type: str, fields: dict[str, Any]) -> None:
    parse_or_error({"model_type": model_type, **fields})


@FUZZ
@given(
    name=st.sampled_from(
        ["meta-llama/Llama-3.1-8B-Instruct", "gpt2", "resnet101", "openai/gpt-oss-20b"]
    ),
    fields=st.dictionaries(st.sampled_from(HF_KEYS), values, max_size=3),
)
def test_edited_model_files_load_or_are_one_line_errors(
    tmp_path: Path, name: str, fields: dict[str, Any]
) -> None:
    data = {**msgspec.to_builtins(load_model_config(name)), **fields}
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(data))
    try:
        cfg = model_config_from_file(f)
    except JoulecastError as exc:
        assert one_line(exc) and str(exc).startswith("m.yaml"), str(exc)
    else:
        check_config(cfg)


# ---- any accepted architecture builds and estimates, or says why not -----------------------
small = st.integers(min_value=1, max_value=8)


@st.composite
def small_configs(draw: st.DrawFn) -> dict[str, Any]:
    """HF configs with small, plausible (not always consistent) numbers, every family."""
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    data: dict[str, Any] = {
        "model_type": draw(st.sampled_from(MODEL_TYPES[:-1])),
        "num_hidden_layers": draw(st.integers(1, 3)),
        "hidden_size": heads * draw(st.sampled_from([8, 16, 12])),
        "intermediate_size": draw(st.integers(1, 256)),
        "num_attention_heads": heads,
        "num_key_value_heads": draw(st.sampled_from([1, heads, 3])),
        "vocab_size": draw(st.integers(1, 1000)),
        "max_position_embeddings": 512,
        "num_experts": draw(st.integers(0, 8)),
        "num_experts_per_tok": draw(small),
        "moe_intermediate_size": draw(st.integers(1, 64)),
        "kv_lora_rank": draw(small),
        "qk_rope_head_dim": draw(small),
        "qk_nope_head_dim": draw(small),
        "v_head_dim": draw(small),
        "image_size": draw(st.sampled_from([32, 64, 7])),
        "patch_size": draw(st.sampled_from([2, 4, 16, 100])),
        "depths": draw(st.lists(small, min_size=1, max_size=4)),
        "hidden_sizes": draw(st.lists(st.sampled_from([8, 16, 3, 12]), min_size=1, max_size=4)),
        "embedding_size": draw(st.integers(1, 16)),
        "neck_hidden_sizes": draw(st.lists(st.integers(1, 32), min_size=1, max_size=8)),
        "transformer_depths": draw(st.lists(small, min_size=1, max_size=4)),
    }
    dropped = draw(st.lists(st.sampled_from(sorted(data)[1:]), max_size=3))
    return {k: v for k, v in data.items() if k not in dropped}


@FUZZ
@given(
    data=small_configs(),
    phase=st.sampled_from(["prefill", "decode"]),
    precision=st.sampled_from(["bf16", "fp8", "auto"]),
)
def test_accepted_configs_build_and_estimate_finite(
    data: dict[str, Any], phase: str, precision: str
) -> None:
    cfg = parse_or_error(data)
    if cfg is None:
        return
    vision = cfg.is_vision
    request: dict[str, Any] = {
        "batch": 2,
        "seq": None if vision else 8,
        "phase": "prefill" if vision else phase,
        "context": None if vision or phase == "prefill" else 16,
        "precision": precision,
    }
    try:
        need = memory_required_bytes(cfg, **request)
        workload = build_workload(cfg, **request)
    except JoulecastError as exc:
        event("build refused")
        assert one_line(exc), str(exc)
        return
    event("built")
    assert math.isfinite(need) and need > 0
    est = estimate(workload, "h100-sxm")
    assert all(math.isfinite(v) and v > 0 for v in (est.time_ms, est.energy_j, est.avg_power_w))


# ---- the reproducers found by fuzzing ------------------------------------------------------
LLAMA = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "vocab_size": 100,
}


def test_four_million_layers_are_refused_at_once() -> None:
    """num_hidden_layers: 4,000,000 built a pass for minutes; now a one-line error."""
    with pytest.raises(SpecError, match="num_hidden_layers: must be at most 10,000"):
        parse_hf_config({**LLAMA, "num_hidden_layers": 4_000_000})


def test_ten_thousand_layers_still_build() -> None:
    cfg = parse_hf_config({**LLAMA, "num_hidden_layers": MAX_LAYERS})
    assert len(build_workload(cfg, batch=1, seq=4)) > MAX_LAYERS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 2**40}, "hidden_size: must be at most 2,147,483,648"),
        ({"vocab_size": 1e308}, r"vocab_size: Expected `int \| null`, got `float`"),
        ({"num_attention_heads": math.nan}, "num_attention_heads: must be a finite number"),
        ({"intermediate_size": [128]}, r"intermediate_size: Expected `int \| null`, got `array`"),
    ],
)
def test_sizes_beyond_bounds_or_not_integers_are_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        parse_hf_config({**LLAMA, **change})


def test_hidden_size_not_divisible_by_heads_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_hf_config({**LLAMA, "hidden_size": 100, "num_attention_heads": 3})
    assert "hidden_size (100) must be divisible by num_attention_heads (3)" in str(info.value)
    # with an explicit head_dim the projections do not depend on hidden_size / heads
    ok = parse_hf_config({**LLAMA, "hidden_size": 100, "num_attention_heads": 3, "head_dim": 32})
    assert ok.dim_head == 32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_key_value_heads": 3}, r"num_attention_heads \(4\) must be a multiple of"),
        (
            {"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 5},
            r"num_experts_per_tok \(5\) must lie in \[1, num_experts\]",
        ),
        (
            {"model_type": "mixtral", "num_local_experts": 0, "num_experts_per_tok": 2},
            "a mixtral model needs num_experts >= 1",
        ),
    ],
)
def test_inconsistent_heads_and_experts_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_hf_config({**LLAMA, **change})


def test_cnn_stage_lists_must_agree() -> None:
    resnet = {"model_type": "resnet", "depths": [3, 4], "embedding_size": 64}
    with pytest.raises(SpecError, match=r"depths \(2 stages\) and hidden_sizes \(3\)"):
        parse_hf_config({**resnet, "hidden_sizes": [256, 512, 1024]})
    with pytest.raises(SpecError, match="depths add up to 20,000 layers; at most 10,000"):
        parse_hf_config({**resnet, "depths": [10_000, 10_000], "hidden_sizes": [256, 512]})
    mobilevit = msgspec.to_builtins(load_model_config("apple/mobilevit-small"))
    mobilevit.update(hidden_sizes=[144, 192], id="m", source="test")
    with pytest.raises(SpecError, match="a mobilevit model needs 3 hidden_sizes"):
        parse_hf_config({**mobilevit, "model_type": "mobilevit"})
