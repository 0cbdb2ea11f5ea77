"""Model architectures as data: one YAML file per model, loaded into a frozen :class:`ModelConfig`.

Each file under ``joulecast/models/configs/`` holds the Hugging Face ``config.json`` fields that
decide which kernels a forward pass launches (layers, widths, heads, experts, MLA ranks, sliding
windows, weight precision) and a ``source`` saying where the numbers come from. Ids are matched
case-insensitively, with or without the ``org/`` prefix, and through short aliases.
A user's own ``config.json`` is read with :func:`model_config_from_hf_json`; nothing is ever
downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from joulecast.errors import SpecError, UnknownNameError
from joulecast.models.config_checks import shape_problems
from joulecast.schema import (
    MAX_LAYERS,
    Dimension,
    LayerCount,
    OptionalCount,
    brief,
    integral,
    validate,
)
from joulecast.yamlio import load_file, load_mapping, load_yaml_text

Family = Literal[
    "bert",
    "vit",
    "gpt2",
    "opt",
    "llama",
    "qwen2",
    "qwen3",
    "mistral",
    "gemma3",
    "gpt_oss",
    "qwen3_moe",
    "mixtral",
    "llama4",
    "deepseek_v3",
    "resnet",
    "mobilevit",
]

#: Families whose graph is a decoder-only transformer (prefill/decode, KV cache, LM head).
DECODER_FAMILIES = frozenset(
    {
        "gpt2",
        "opt",
        "llama",
        "qwen2",
        "qwen3",
        "mistral",
        "gemma3",
        "gpt_oss",
        "qwen3_moe",
        "mixtral",
        "llama4",
        "deepseek_v3",
    }
)
MOE_FAMILIES = frozenset({"gpt_oss", "qwen3_moe", "mixtral", "llama4", "deepseek_v3"})
VISION_FAMILIES = frozenset({"vit", "resnet", "mobilevit"})

_TEXT_REQUIRED = (
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "vocab_size",
)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "bert": (*_TEXT_REQUIRED, "max_position_embeddings"),
    "vit": (
        "num_hidden_layers",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
        "image_size",
        "patch_size",
    ),
    "gpt2": (*_TEXT_REQUIRED, "max_position_embeddings"),
    "opt": (*_TEXT_REQUIRED, "max_position_embeddings"),
    "llama": _TEXT_REQUIRED,
    "qwen2": _TEXT_REQUIRED,
    "qwen3": _TEXT_REQUIRED,
    "mistral": _TEXT_REQUIRED,
    "gemma3": _TEXT_REQUIRED,
    "gpt_oss": (*_TEXT_REQUIRED, "num_experts", "num_experts_per_tok"),
    "qwen3_moe": (
        *_TEXT_REQUIRED,
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
    ),
    "mixtral": (*_TEXT_REQUIRED, "num_experts", "num_experts_per_tok"),
    "llama4": (*_TEXT_REQUIRED, "num_experts", "num_experts_per_tok"),
    "deepseek_v3": (
        *_TEXT_REQUIRED,
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "kv_lora_rank",
        "qk_rope_head_dim",
        "qk_nope_head_dim",
        "v_head_dim",
    ),
    "resnet": ("depths", "hidden_sizes", "embedding_size"),
    "mobilevit": (
        "hidden_sizes",
        "neck_hidden_sizes",
        "transformer_depths",
        "num_attention_heads",
        "image_size",
        "patch_size",
    ),
}


#: Most parameters a checkpoint may declare outside the graph (``extra_params``): 10**15, a
#: thousand times today's largest models.
MAX_PARAMS = 10**15
#: Largest MLP/expansion ratio of a vision block (MobileViT: 2 and 4).
MAX_RATIO = 1024.0
#: Most stages of a CNN or MobileViT (ResNet: 4; MobileViT: 3).
MAX_STAGES = 64

Ratio = Annotated[float, msgspec.Meta(gt=0, le=MAX_RATIO)]
Widths = Annotated[tuple[Dimension, ...], msgspec.Meta(min_length=1, max_length=MAX_STAGES)]
Depths = Annotated[tuple[LayerCount, ...], msgspec.Meta(min_length=1, max_length=MAX_STAGES)]


class ModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Architecture of one model: the ``config.json`` fields that shape its kernels.

    Field names follow Hugging Face where one exists. Widths are element counts; ``None`` means
    "not applicable to this family" (or "derive the usual default", e.g. ``head_dim``).
    Construct with :func:`load_model_config`, :func:`model_config_from_file` or
    :func:`parse_hf_config` (which validate); counts are > 0 (or >= 0 where 0 means "none").

    Attributes:
        source: where the architecture numbers come from (non-empty).
        fp8_scope: which linears a checkpoint's fp8 recipe quantises (used at --precision fp8).
        sliding_window_pattern: every N-th layer (N-1, 2N-1, ...) is global, others local.
        moe_layer_step: MoE every N-th layer (N-1, ...).
        active_params_include_embedding: whether the vendor's 'active parameters' count the
            input embedding.
        extra_params: checkpoint parameters outside the modelled graph (e.g. a vision tower).
    """

    id: str
    family: Family
    aliases: tuple[str, ...] = ()
    source: Annotated[str, msgspec.Meta(min_length=1)]
    weight_precision: Literal["fp32", "bf16", "fp16", "fp8", "mxfp4"] = "bf16"
    fp8_scope: Literal["all_linear", "mlp_inner_layers", "routed_experts_inner_layers"] = (
        "all_linear"
    )
    # ---- transformer body ----
    num_hidden_layers: LayerCount | None = None
    hidden_size: Dimension | None = None
    intermediate_size: Dimension | None = None
    num_attention_heads: Dimension | None = None
    num_key_value_heads: Dimension | None = None
    head_dim: Dimension | None = None
    vocab_size: Dimension | None = None
    max_position_embeddings: Dimension | None = None
    type_vocab_size: OptionalCount = 0
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    attention_bias: bool = False
    qk_norm: bool = False
    sliding_window: Dimension | None = None
    sliding_window_pattern: Dimension | None = None
    attention_chunk_size: Dimension | None = None
    no_rope_layer_interval: Dimension | None = None
    # ---- mixture of experts ----
    num_experts: OptionalCount = 0
    num_experts_per_tok: OptionalCount = 0
    moe_intermediate_size: Dimension | None = None
    num_shared_experts: OptionalCount = 0
    shared_expert_intermediate_size: Dimension | None = None
    first_k_dense_replace: Annotated[int, msgspec.Meta(ge=0, le=MAX_LAYERS)] = 0
    # GPUs the routed experts are spread over when this config is one GPU's shard (serving).
    expert_parallel: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 1
    moe_layer_step: LayerCount = 1
    intermediate_size_mlp: Dimension | None = None
    # ---- multi-head latent attention (DeepSeek-V3) ----
    q_lora_rank: Dimension | None = None
    kv_lora_rank: Dimension | None = None
    qk_rope_head_dim: Dimension | None = None
    qk_nope_head_dim: Dimension | None = None
    v_head_dim: Dimension | None = None
    # ---- vision ----
    image_size: Dimension | None = None
    patch_size: Dimension | None = None
    num_channels: Dimension = 3
    num_labels: Dimension = 1000
    depths: Depths | None = None
    hidden_sizes: Widths | None = None
    embedding_size: Dimension | None = None
    neck_hidden_sizes: Widths | None = None
    transformer_depths: Depths | None = None
    mlp_ratio: Ratio = 2.0
    expand_ratio: Ratio = 4.0
    conv_kernel_size: Dimension = 3
    # ---- how published counts are quoted ----
    active_params_include_embedding: bool = True
    extra_params: Annotated[int, msgspec.Meta(ge=0, le=MAX_PARAMS)] = 0
    extra_params_note: str | None = None

    def __post_init__(self) -> None:
        problems = shape_problems(self, moe_families=MOE_FAMILIES)
        if problems:
            raise ValueError("; ".join(problems))

    # ---- derived -------------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        """Key/value heads (= attention heads without GQA)."""
        return self.num_key_value_heads or self.heads

    @property
    def heads(self) -> int:
        """Attention heads (0 for attention-free models)."""
        return self.num_attention_heads or 0

    @property
    def hidden(self) -> int:
        """Hidden size (model width)."""
        if self.hidden_size is None:
            raise SpecError(f"model '{self.id}': hidden_size is not set")
        return self.hidden_size

    @property
    def layers(self) -> int:
        """Number of transformer layers."""
        if self.num_hidden_layers is None:
            raise SpecError(f"model '{self.id}': num_hidden_layers is not set")
        return self.num_hidden_layers

    @property
    def ffn(self) -> int:
        """Dense feed-forward width."""
        if self.intermediate_size is None:
            raise SpecError(f"model '{self.id}': intermediate_size is not set")
        return self.intermediate_size

    @property
    def vocab(self) -> int:
        """Vocabulary size."""
        if self.vocab_size is None:
            raise SpecError(f"model '{self.id}': vocab_size is not set")
        return self.vocab_size

    @property
    def dim_head(self) -> int:
        """Per-head width (``head_dim`` or hidden / heads)."""
        if self.head_dim is not None:
            return self.head_dim
        return self.hidden // max(1, self.heads)

    @property
    def is_moe(self) -> bool:
        """Whether any layer routes tokens to experts."""
        return self.num_experts > 0

    @property
    def is_vision(self) -> bool:
        """Whether the model takes images (no sequence length)."""
        return self.family in VISION_FAMILIES

    @property
    def is_decoder(self) -> bool:
        """Whether the model generates tokens (prefill/decode phases)."""
        return self.family in DECODER_FAMILIES

    @property
    def uses_mla(self) -> bool:
        """Whether attention is DeepSeek multi-head latent attention."""
        return self.kv_lora_rank is not None

    @property
    def expert_width(self) -> int:
        """Width of one routed expert's feed-forward."""
        return self.moe_intermediate_size or self.ffn

    def is_moe_layer(self, layer: int) -> bool:
        """Whether layer ``layer`` (0-based) has routed experts."""
        if not self.is_moe or layer < self.first_k_dense_replace:
            return False
        return (layer + 1) % self.moe_layer_step == 0

    def dense_ffn_width(self, layer: int) -> int:
        """Feed-forward width of a dense (non-MoE) layer."""
        if self.is_moe and self.intermediate_size_mlp is not None:
            return self.intermediate_size_mlp
        return self.ffn

    def attention_window(self, layer: int) -> int | None:
        """Sliding/chunked window of layer ``layer``, or ``None`` for global attention."""
        if self.sliding_window_pattern is not None and self.sliding_window is not None:
            is_global = (layer + 1) % self.sliding_window_pattern == 0
            return None if is_global else self.sliding_window
        if self.attention_chunk_size is not None and self.no_rope_layer_interval is not None:
            is_global = (layer + 1) % self.no_rope_layer_interval == 0
            return None if is_global else self.attention_chunk_size
        return self.sliding_window

    def uses_rope(self, layer: int) -> bool:
        """Whether layer ``layer`` applies rotary position embeddings."""
        if self.family in ("bert", "vit", "gpt2", "opt", "resnet", "mobilevit"):
            return False
        if self.no_rope_layer_interval is not None:
            return (layer + 1) % self.no_rope_layer_interval != 0
        return True


def _configs_dir() -> Any:
    return resources.files("joulecast.models") / "configs"


#: Fields every config must give, whatever its family (``id``, ``family``, ``source``).
_ALWAYS_REQUIRED = tuple(f.name for f in msgspec.structs.fields(ModelConfig) if f.required)


def _validate(data: Mapping[str, Any], origin: str) -> ModelConfig:
    family = data.get("family")
    if isinstance(family, str) and family in _REQUIRED:
        missing = [k for k in _REQUIRED[family] if data.get(k) is None]
        if missing:
            raise SpecError(
                f"{origin}: missing required fields for a {family} model: " + ", ".join(missing)
            )
    absent = [k for k in _ALWAYS_REQUIRED if k not in data]
    if absent:  # all of them named, where msgspec would name the first
        raise SpecError(f"{origin}: missing required fields: {', '.join(absent)}")
    return validate(ModelConfig, dict(data), origin)


@cache
def _shipped_files() -> dict[str, Any]:
    """Shipped config files by file name (not yet read)."""
    files: dict[str, Any] = {}
    for entry in sorted(_configs_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            files[entry.name] = entry
    return files


@cache
def _shipped_mapping(file_name: str) -> dict[str, Any]:
    entry = _shipped_files()[file_name]
    data = load_yaml_text(entry.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SpecError(f"model config {file_name}: expected a mapping")
    return data


@cache
def _load_shipped(file_name: str) -> ModelConfig:
    return _validate(_shipped_mapping(file_name), f"model config {file_name}")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _file_of(model_id: str) -> str:
    """Shipped file name of a canonical id (``org/Name`` -> ``org--name.yaml``)."""
    return model_id.lower().replace("/", "--") + ".yaml"


@cache
def _index() -> dict[str, str]:
    """Every accepted name (id, id without org, aliases; normalised) -> shipped file name."""
    index: dict[str, str] = {}
    for file_name in _shipped_files():
        data = _shipped_mapping(file_name)
        model_id = str(data.get("id", ""))
        for key in (model_id, model_id.split("/")[-1], *(data.get("aliases") or ())):
            index.setdefault(_norm(str(key)), file_name)
    return index


def model_ids() -> tuple[str, ...]:
    """Hugging Face ids of every shipped model config, sorted."""
    return tuple(sorted((str(_shipped_mapping(f)["id"]) for f in _shipped_files()), key=str.lower))


def _resolve_file(name: str) -> str:
    key = _norm(name)
    direct = _file_of(key)
    if direct in _shipped_files():  # a canonical id: no need to read the other files
        return direct
    index = _index()
    if key in index:
        return index[key]
    raise UnknownNameError("model", name, sorted(set(index) | set(model_ids())))


def resolve_model_id(name: str) -> str:
    """Map an id or alias (any case, with or without ``org/``) to the canonical id.

    Raises:
        UnknownNameError: no shipped model matches; the message suggests close names.
    """
    return str(_shipped_mapping(_resolve_file(name))["id"])


def load_model_config(name: str) -> ModelConfig:
    """Return the shipped architecture of model ``name`` (an HF id or alias); only that
    model's file is read when ``name`` is its canonical id.

    Raises:
        UnknownNameError: unknown model (with suggestions).
    """
    return _load_shipped(_resolve_file(name))


def model_config_from_file(path: str | Path) -> ModelConfig:
    """Read a joulecast model YAML (same schema as the shipped files)."""
    p = Path(path)
    return _validate(load_mapping(p, "model config"), p.name)


# ---- Hugging Face config.json -----------------------------------------------------------
_MODEL_TYPES: dict[str, str] = {
    "bert": "bert",
    "vit": "vit",
    "gpt2": "gpt2",
    "opt": "opt",
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "mistral": "mistral",
    "gemma3": "gemma3",
    "gemma3_text": "gemma3",
    "gpt_oss": "gpt_oss",
    "qwen3_moe": "qwen3_moe",
    "mixtral": "mixtral",
    "llama4": "llama4",
    "llama4_text": "llama4",
    "deepseek_v3": "deepseek_v3",
    "resnet": "resnet",
    "mobilevit": "mobilevit",
}

# HF key -> ModelConfig field, applied when the field itself is absent.
_KEY_ALIASES: dict[str, str] = {
    "n_layer": "num_hidden_layers",
    "n_embd": "hidden_size",
    "n_head": "num_attention_heads",
    "n_inner": "intermediate_size",
    "ffn_dim": "intermediate_size",
    "n_positions": "max_position_embeddings",
    "num_local_experts": "num_experts",
    "n_routed_experts": "num_experts",
    "n_shared_experts": "num_shared_experts",
    "activation_function": "hidden_act",
    "interleave_moe_layer_step": "moe_layer_step",
    "use_qk_norm": "qk_norm",
    "neck_hidden_sizes": "neck_hidden_sizes",
}

_FIELDS = frozenset(ModelConfig.__struct_fields__)


def _to_int(value: Any, key: str, origin: str) -> int:
    number = integral(value)
    if number is None:
        raise SpecError(f"{origin}: field '{key}' must be an integer, got {brief(value)}")
    return number


def parse_hf_config(
    data: Mapping[str, Any], *, name: str | None = None, origin: str | None = None
) -> ModelConfig:
    """Convert a decoded Hugging Face ``config.json`` into a :class:`ModelConfig`.

    Multimodal configs with a ``text_config`` (Gemma 3, Llama 4) use their text part.

    Args:
        data: the decoded JSON.
        name: the model's id (default: the config's ``_name_or_path`` or its model type).
        origin: where the data came from, the prefix of error messages (default: ``name``).

    Raises:
        SpecError: unsupported ``model_type`` or missing, out-of-bounds or inconsistent fields
            (all missing ones named).
    """
    label = name or "config.json"
    origin = origin or label
    if not isinstance(data, Mapping):
        raise SpecError(f"{origin}: expected a JSON object")
    merged: dict[str, Any] = dict(data)
    text = data.get("text_config")
    if isinstance(text, Mapping):
        merged = {**merged, **text}
    model_type = data.get("model_type", merged.get("model_type"))
    if not isinstance(model_type, str) or model_type not in _MODEL_TYPES:
        known = ", ".join(sorted(_MODEL_TYPES))
        raise SpecError(
            f"{origin}: unsupported model_type {brief(model_type)} (supported: {known})"
        )
    family = _MODEL_TYPES[model_type]
    out: dict[str, Any] = {"family": family}
    for key, value in merged.items():
        target = key if key in _FIELDS else _KEY_ALIASES.get(key)
        if target is None or target in ("id", "family", "aliases", "source"):
            continue
        if target in out and key not in _FIELDS:
            continue  # the canonical key wins over an alias
        out[target] = value
    # family-specific defaults of the HF config classes
    if family == "gpt2" and out.get("intermediate_size") is None and "hidden_size" in out:
        out["intermediate_size"] = 4 * _to_int(out["hidden_size"], "n_embd", origin)
    if family == "gpt2":
        out.setdefault("tie_word_embeddings", True)
    if family in ("mixtral", "gpt_oss", "llama4") and out.get("moe_intermediate_size") is None:
        out["moe_intermediate_size"] = out.get("intermediate_size")
    if family == "deepseek_v3":
        out.setdefault("moe_layer_step", merged.get("moe_layer_freq", 1))
    if family == "gemma3":
        out.setdefault("sliding_window_pattern", 6)
        out.setdefault("qk_norm", True)
        out.setdefault("tie_word_embeddings", True)
    if family == "qwen3" or family == "qwen3_moe":
        out.setdefault("qk_norm", True)
    if family == "gpt_oss":
        out.setdefault("sliding_window_pattern", 2)
        out.setdefault("attention_bias", True)
        out["active_params_include_embedding"] = False
    if family == "llama4":
        out.setdefault("no_rope_layer_interval", 4)
        if merged.get("intermediate_size_mlp") is not None:
            out["intermediate_size_mlp"] = merged["intermediate_size_mlp"]
        out.setdefault("num_shared_experts", 1)
    if family == "qwen2" and "attention_bias" not in merged:
        out["attention_bias"] = True
    if family in ("bert", "vit", "gpt2", "opt"):
        out.setdefault("attention_bias", True)
    qc = merged.get("quantization_config")
    if isinstance(qc, Mapping):
        method = str(qc.get("quant_method", "")).lower()
        if "mxfp4" in method:
            out["weight_precision"] = "mxfp4"
        elif "fp8" in method:
            out["weight_precision"] = "fp8"
    elif merged.get("torch_dtype") in ("float32", "float16", "bfloat16"):
        out["weight_precision"] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[
            merged["torch_dtype"]
        ]
    for key in ("depths", "hidden_sizes", "neck_hidden_sizes", "transformer_depths"):
        if key in out and isinstance(out[key], list):
            out[key] = tuple(out[key])
    for key in ("sliding_window", "attention_chunk_size"):
        if out.get(key) is not None and family not in ("gemma3", "gpt_oss", "llama4", "mistral"):
            out[key] = None  # HF keeps a window field even where use_sliding_window is false
    if family == "mistral" and out.get("sliding_window") is not None:
        out["sliding_window"] = _to_int(out["sliding_window"], "sliding_window", origin)
    ident = name or str(merged.get("_name_or_path") or merged.get("name_or_path") or model_type)
    out["id"] = ident
    out["source"] = f"Hugging Face config.json ({label})"
    # drop keys that are None so that family requirements see them as missing
    cleaned = {k: v for k, v in out.items() if v is not None}
    return _validate(cleaned, origin)


def model_config_from_hf_json(path: str | Path) -> ModelConfig:
    """Read a local Hugging Face ``config.json`` (never downloads).

    Raises:
        SpecError: file missing, unreadable, not UTF-8 or malformed, unsupported model type, or
            missing, out-of-bounds or inconsistent fields.
    """
    p = Path(path)
    data = load_file(p, "model config", kind="json")
    folder = p.parent.name if p.name == "config.json" else ""
    name = folder or (p.name if p.name == "config.json" else p.stem)
    return parse_hf_config(data, name=name, origin=f"{folder}/{p.name}" if folder else p.name)
