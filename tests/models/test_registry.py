"""Model registry: ids, aliases, errors, and the Hugging Face config.json parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joulecast.errors import JoulecastError, SpecError, UnknownNameError
from joulecast.models.registry import (
    ModelConfig,
    load_model_config,
    model_config_from_file,
    model_config_from_hf_json,
    model_ids,
    parse_hf_config,
)

REQUIRED = [
    "bert-large-uncased",
    "gpt2",
    "facebook/opt-1.3b",
    "Qwen/Qwen2-1.5B",
    "google/vit-large-patch16-224",
    "apple/mobilevit-small",
    "resnet101",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.1-405B-Instruct-FP8",
    "meta-llama/Llama-3.3-70B-Instruct",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-30B-A3B-Instruct-2507",
    "Qwen/Qwen3-30B-A3B-Thinking-2507",
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "Qwen/Qwen3-235B-A22B-Thinking-2507",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
    "Qwen/Qwen3-235B-A22B-Thinking-2507-FP8",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",
    "google/gemma-3-12b-it",
    "google/gemma-3-27b-it",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
    "deepseek-ai/DeepSeek-V3.1",
    "deepseek-ai/DeepSeek-R1-0528",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
]


def test_all_required_models_ship() -> None:
    assert set(REQUIRED) <= set(model_ids())
    for model_id in REQUIRED:
        cfg = load_model_config(model_id)
        assert cfg.id == model_id
        assert cfg.source


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("META-LLAMA/LLAMA-3.1-8B-INSTRUCT", "meta-llama/Llama-3.1-8B-Instruct"),
        ("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct"),
        ("qwen3-235b-a22b-fp8", "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8"),
        ("opt-1p3b", "facebook/opt-1.3b"),
        ("openai-community/gpt2", "gpt2"),
        ("microsoft/resnet-101", "resnet101"),
        ("deepseek-r1", "deepseek-ai/DeepSeek-R1-0528"),
    ],
)
def test_aliases(name: str, expected: str) -> None:
    assert load_model_config(name).id == expected


def test_unknown_model_suggests() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_model_config("llama-3.1-9b")
    message = str(info.value)
    assert "llama-3.1-8b" in message
    assert "\n" not in message


def test_fp8_checkpoints_are_marked() -> None:
    assert load_model_config("meta-llama/Llama-3.1-405B-Instruct-FP8").fp8_scope == (
        "mlp_inner_layers"
    )
    assert load_model_config("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8").weight_precision == "fp8"
    assert load_model_config("openai/gpt-oss-20b").weight_precision == "mxfp4"


def test_layer_patterns() -> None:
    gemma = load_model_config("google/gemma-3-12b-it")
    windows = [gemma.attention_window(i) for i in range(gemma.layers)]
    assert windows.count(None) == 8 and windows[5] is None and windows[0] == 1024
    oss = load_model_config("openai/gpt-oss-20b")
    assert oss.attention_window(0) == 128 and oss.attention_window(1) is None
    scout = load_model_config("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    assert not scout.uses_rope(3) and scout.uses_rope(0)
    maverick = load_model_config("meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8")
    assert [maverick.is_moe_layer(i) for i in range(4)] == [False, True, False, True]
    ds = load_model_config("deepseek-ai/DeepSeek-V3.1")
    assert not ds.is_moe_layer(2) and ds.is_moe_layer(3)


def test_yaml_missing_fields_named(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("id: my/model\nfamily: llama\nsource: test\nhidden_size: 64\n")
    with pytest.raises(SpecError) as info:
        model_config_from_file(path)
    for field in ("num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size"):
        assert field in str(info.value)


LLAMA_JSON: dict[str, Any] = {
    "model_type": "llama",
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "max_position_embeddings": 131072,
}


def test_hf_json_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_JSON))
    cfg = model_config_from_hf_json(folder / "config.json")
    shipped = load_model_config("meta-llama/Llama-3.1-8B-Instruct")
    for field in (
        "num_hidden_layers",
        "hidden_size",
        "intermediate_size",
        "num_key_value_heads",
        "head_dim",
        "vocab_size",
        "tie_word_embeddings",
    ):
        assert getattr(cfg, field) == getattr(shipped, field)
    assert cfg.id == "my-llama"


def test_hf_json_gpt2_and_text_config() -> None:
    gpt2 = parse_hf_config(
        {
            "model_type": "gpt2",
            "n_layer": 12,
            "n_embd": 768,
            "n_head": 12,
            "vocab_size": 50257,
            "n_positions": 1024,
        }
    )
    assert gpt2.intermediate_size == 3072 and gpt2.tie_word_embeddings
    gemma = parse_hf_config(
        {
            "model_type": "gemma3",
            "text_config": {
                "model_type": "gemma3_text",
                "num_hidden_layers": 48,
                "hidden_size": 3840,
                "intermediate_size": 15360,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 256,
                "vocab_size": 262208,
                "sliding_window": 1024,
            },
        }
    )
    assert gemma.family == "gemma3" and gemma.attention_window(0) == 1024


def test_hf_json_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="num_attention_heads"):
        parse_hf_config({k: v for k, v in LLAMA_JSON.items() if k != "num_attention_heads"})
    with pytest.raises(SpecError, match="unsupported model_type"):
        parse_hf_config({"model_type": "mamba"})
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="malformed JSON"):
        model_config_from_hf_json(bad)
    with pytest.raises(SpecError, match="not found"):
        model_config_from_hf_json(tmp_path / "absent.json")


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-4, max_value=10**6),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(min_value=0, max_value=512), max_size=4),
)
_keys = st.sampled_from(
    sorted(
        {
            *LLAMA_JSON,
            "n_layer",
            "n_embd",
            "n_head",
            "ffn_dim",
            "num_local_experts",
            "n_routed_experts",
            "num_experts_per_tok",
            "kv_lora_rank",
            "sliding_window",
            "quantization_config",
            "text_config",
            "depths",
            "image_size",
            "patch_size",
        }
    )
)


@settings(max_examples=300, deadline=None)
@given(
    model_type=st.sampled_from(
        [
            "llama",
            "qwen3",
            "gpt2",
            "opt",
            "mixtral",
            "deepseek_v3",
            "gemma3",
            "vit",
            "resnet",
            "bert",
            "nope",
        ]
    ),
    fields=st.dictionaries(_keys, _values, max_size=12),
)
def test_hf_parser_never_crashes(model_type: str, fields: dict[str, Any]) -> None:
    """Arbitrary config.json content yields a ModelConfig or a one-line JoulecastError."""
    data = {"model_type": model_type, **fields}
    try:
        cfg = parse_hf_config(data)
    except JoulecastError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(cfg, ModelConfig)


@settings(max_examples=100, deadline=None)
@given(
    layers=st.integers(1, 128),
    heads=st.integers(1, 64),
    group=st.integers(1, 8),
    head_dim=st.sampled_from([32, 64, 128, 256]),
    ffn=st.integers(1, 65536),
    vocab=st.integers(1, 300000),
    tie=st.booleans(),
)
def test_hf_parser_keeps_valid_fields(
    layers: int, heads: int, group: int, head_dim: int, ffn: int, vocab: int, tie: bool
) -> None:
    data = {
        "model_type": "qwen3",
        "num_hidden_layers": layers,
        "hidden_size": heads * head_dim,
        "num_attention_heads": heads * group,
        "num_key_value_heads": heads,
        "head_dim": head_dim,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "tie_word_embeddings": tie,
    }
    cfg = parse_hf_config(data)
    assert (cfg.layers, cfg.heads, cfg.kv_heads, cfg.dim_head, cfg.ffn, cfg.vocab) == (
        layers,
        heads * group,
        heads,
        head_dim,
        ffn,
        vocab,
    )
    assert cfg.tie_word_embeddings is tie and cfg.qk_norm


def test_direct_file_lookup_agrees_with_the_alias_index() -> None:
    """A canonical id is read from its own file alone; that shortcut must never pick another
    model's file than the full alias index would."""
    from joulecast.models import registry

    for key, file_name in registry._index().items():
        assert registry._resolve_file(key) == file_name, key
    for model_id in model_ids():
        assert registry._file_of(model_id) in registry._shipped_files(), model_id


def test_every_family_has_a_builder_and_unknown_ones_fail_loudly() -> None:
    from typing import get_args

    import pytest

    from joulecast.errors import UnknownNameError
    from joulecast.models.build import builder_for, registered_families
    from joulecast.models.registry import Family

    assert registered_families() == set(get_args(Family))
    with pytest.raises(UnknownNameError, match="unknown model family 'rwkv'"):
        builder_for("rwkv")


def test_hf_json_errors_name_the_folder_and_file(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**LLAMA_JSON, "num_attention_heads": 3}))
    with pytest.raises(SpecError, match=r"^my-model/config.json: num_attention_heads \(3\) must"):
        model_config_from_hf_json(folder / "config.json")
