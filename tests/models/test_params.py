"""Parameter counts computed from the architecture against published counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joulecast.models.params import count_params
from joulecast.models.registry import load_model_config, model_ids

# Published (total, active) parameter counts, in billions, for the models ML.ENERGY's index does
# not list or lists only by its nominal name.
PUBLISHED: dict[str, tuple[float, float]] = {
    # BERT paper (Devlin et al. 2019), BERT-Large: 340M; HF BertModel bert-large-uncased: 335.1M
    "bert-large-uncased": (0.335, 0.335),
    # OpenAI GPT-2 small: 124M (HF model card of openai-community/gpt2)
    "gpt2": (0.124, 0.124),
    # OPT paper (Zhang et al. 2022) table 1: 1.3B; HF safetensors 1.32B
    "facebook/opt-1.3b": (1.3, 1.3),
    # Qwen2 model card: Qwen2-1.5B, 1.54B (non-embedding 1.31B)
    "Qwen/Qwen2-1.5B": (1.54, 1.54),
    # ViT paper (Dosovitskiy et al. 2021) table 1: ViT-Large 307M; HF ViTModel 304M
    "google/vit-large-patch16-224": (0.304, 0.304),
    # MobileViT paper (Mehta & Rastegari 2022): MobileViT-S 5.6M
    "apple/mobilevit-small": (0.0056, 0.0056),
    # torchvision resnet101 (IMAGENET1K_V1 metadata): 44,549,160
    "resnet101": (0.044549, 0.044549),
    # Mistral AI: Mistral-7B-v0.3 safetensors 7.25B
    "mistralai/Mistral-7B-Instruct-v0.3": (7.25, 7.25),
    # Mistral AI Mixtral announcement: 46.7B total, 12.9B active
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (46.7, 12.9),
    # Qwen3 model card: Qwen3-14B 14.8B (ML.ENERGY lists the nominal 14.0)
    "Qwen/Qwen3-14B": (14.8, 14.8),
    # Qwen3-30B-A3B model card: 30.5B total, 3.3B activated (ML.ENERGY lists the nominal 3.0)
    "Qwen/Qwen3-30B-A3B-Instruct-2507": (30.5, 3.3),
    "Qwen/Qwen3-30B-A3B-Thinking-2507": (30.5, 3.3),
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": (30.5, 3.3),
    # OpenAI gpt-oss model card: 20.91B total, 3.61B active (ML.ENERGY rounds to 21/4)
    "openai/gpt-oss-20b": (20.91, 3.61),
    # OpenAI gpt-oss model card: 116.83B total, 5.13B active (excluding the embedding)
    "openai/gpt-oss-120b": (116.83, 5.13),
    # DeepSeek-V3 technical report: 671B total, 37B activated (MTP module excluded)
    "deepseek-ai/DeepSeek-V3.1": (671.0, 37.0),
    "deepseek-ai/DeepSeek-R1-0528": (671.0, 37.0),
    # Meta Llama 4 model card: Scout 109B total / 17B active (incl. ~1B vision encoder),
    # Maverick 400B / 17B
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": (109.0, 17.0),
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": (400.0, 17.0),
    # Meta Llama 3.1 model card: 8.03B / 70.6B / 405.9B (HF safetensors counts)
    "meta-llama/Llama-3.1-8B-Instruct": (8.03, 8.03),
    "meta-llama/Llama-3.1-70B-Instruct": (70.6, 70.6),
    "meta-llama/Llama-3.3-70B-Instruct": (70.6, 70.6),
    "meta-llama/Llama-3.1-405B-Instruct": (405.9, 405.9),
    # Gemma 3 technical report table 1 (text: embedding + non-embedding): 12B = 1,012M + 10,759M,
    # 27B = 1,416M + 25,600M (vision encoder of 417M not counted here)
    "google/gemma-3-12b-it": (11.77, 11.77),
    "google/gemma-3-27b-it": (27.02, 27.02),
}

# ML.ENERGY index entries that quote the nominal size from the model name rather than a count;
# those rows are checked against PUBLISHED instead.
NOMINAL_IN_INDEX = {
    "Qwen/Qwen3-14B",  # index 14.0, model card 14.8
    "Qwen/Qwen3-30B-A3B-Instruct-2507",  # index active 3.0, model card 3.3
    "Qwen/Qwen3-30B-A3B-Thinking-2507",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "openai/gpt-oss-20b",  # index active 4.0 (3.61 rounded up), model card 3.61
}

TOLERANCE = 0.03


def _rel(a: float, b: float) -> float:
    return abs(a / b - 1.0)


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_counts_match_published(model_id: str) -> None:
    total, active = PUBLISHED[model_id]
    counts = count_params(load_model_config(model_id))
    assert _rel(counts.total_billions, total) <= TOLERANCE, (counts.total_billions, total)
    assert _rel(counts.active_billions, active) <= TOLERANCE, (counts.active_billions, active)


def _index(data_dir: Path) -> dict[str, dict[str, float]]:
    path = data_dir / "mlenergy" / "v3" / "index.json"
    if not path.is_file():
        pytest.skip(f"ML.ENERGY index not found at {path}")
    models: dict[str, dict[str, float]] = json.loads(path.read_text())["models"]
    return models


def test_counts_match_mlenergy_index(data_dir: Path) -> None:
    index = _index(data_dir)
    shipped = set(model_ids())
    checked = 0
    failures = []
    for model_id, entry in index.items():
        if model_id not in shipped or model_id in NOMINAL_IN_INDEX:
            continue
        counts = count_params(load_model_config(model_id))
        for label, ours, theirs in (
            ("total", counts.total_billions, entry["total_params_billions"]),
            ("active", counts.active_billions, entry["activated_params_billions"]),
        ):
            if _rel(ours, theirs) > TOLERANCE:
                failures.append(f"{model_id} {label}: {ours:.2f} vs {theirs:.2f}")
        checked += 1
    assert not failures, failures
    assert checked >= 20


def test_nominal_index_entries_are_still_nominal(data_dir: Path) -> None:
    """If ML.ENERGY starts quoting real counts, the exemption list must shrink."""
    index = _index(data_dir)
    for model_id in NOMINAL_IN_INDEX:
        entry = index[model_id]
        counts = count_params(load_model_config(model_id))
        assert (
            _rel(counts.total_billions, entry["total_params_billions"]) > TOLERANCE
            or _rel(counts.active_billions, entry["activated_params_billions"]) > TOLERANCE
        )


def test_every_required_model_has_a_published_count(data_dir: Path) -> None:
    index = _index(data_dir)
    missing = [m for m in model_ids() if m not in PUBLISHED and m not in index]
    assert not missing


def test_moe_active_below_total() -> None:
    for model_id in model_ids():
        counts = count_params(load_model_config(model_id))
        assert 0 < counts.active <= counts.total
        if load_model_config(model_id).is_moe:
            assert counts.active < 0.5 * counts.total
