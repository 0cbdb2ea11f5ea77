"""Diffusion pipelines as data: one YAML file per model in ``joulecast/diffusion/configs/``.

A file holds the three parts of a text-to-image or text-to-video pipeline as their published
configs give them: the denoiser (``transformer/config.json``), the text encoders and the VAE
decoder, plus the pipeline's defaults (steps, classifier-free guidance, resolution), and a
``source`` for each. Ids are matched case-insensitively, with or without the ``org/`` prefix,
and through short aliases; an unknown name is an error that lists close names.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from joulecast.errors import SpecError, UnknownNameError
from joulecast.schema import Dimension, LayerCount, OptionalCount, validate
from joulecast.yamlio import load_mapping, load_yaml_text

#: Denoiser families, one graph builder each (``joulecast.diffusion.denoiser``).
DenoiserFamily = Literal[
    "mmdit",  # SD3 / SD3.5: joint attention, separate text and image weights
    "flux",  # FLUX.1: double-stream joint blocks, then single-stream parallel blocks
    "hunyuan_video",  # FLUX-like with a text token refiner
    "pixart",  # DiT, adaLN-single, self-attention + cross-attention
    "hunyuan_dit",  # DiT with long skips, self-attention + cross-attention
    "sana",  # linear-attention DiT with a convolutional (GLUMBConv) feed-forward
    "wan",  # video DiT, 3-D patches, self-attention + cross-attention
    "cogvideox",  # video DiT, text and video tokens share the weights (expert adaLN)
]
EncoderKind = Literal["t5", "clip", "bert", "llm"]
VaeKind = Literal["kl2d", "dcae", "causal3d"]
CfgMode = Literal["batch", "sequential", "none"]
Task = Literal["text-to-image", "text-to-video"]
Billions = Annotated[float, msgspec.Meta(gt=0, le=1e4)]
Millions = Annotated[float, msgspec.Meta(gt=0, le=1e7)]
Factor = Annotated[int, msgspec.Meta(ge=1, le=64)]


class DenoiserSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The diffusion transformer (``transformer/config.json`` fields that shape its kernels).

    Attributes:
        layers: transformer blocks (double-stream blocks for flux / hunyuan_video).
        single_layers: single-stream blocks (flux / hunyuan_video).
        refiner_layers: text token-refiner blocks (hunyuan_video).
        ffn: feed-forward width (SANA: the GLU's inner width).
        text_dim: width of the text features entering the denoiser.
        pooled_dim: width of a pooled text embedding (0: none).
        patch: spatial patch size on the latent; ``patch_t`` the temporal one.
        dual_attention_layers: SD3.5-medium blocks with a second, image-only attention.
        cross_heads, cross_head_dim: cross-attention heads where they differ (SANA).
        time_embed_dim: width of the timestep embedding feeding adaLN (CogVideoX).
        rope: rotary position embedding on queries and keys.
        qk_norm: normalisation of queries and keys (none, rms, layer).
        params_b: denoiser parameters counted from these fields (diffusers class on the meta
            device), billions; ``published_params_b`` the model card's figure.
    """

    family: DenoiserFamily
    layers: LayerCount
    single_layers: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    refiner_layers: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    hidden: Dimension
    heads: Dimension
    head_dim: Dimension
    ffn: Dimension
    in_channels: Dimension
    out_channels: Dimension
    patch: Factor
    patch_t: Factor = 1
    text_dim: Dimension
    pooled_dim: OptionalCount = 0
    dual_attention_layers: OptionalCount = 0
    cross_heads: Dimension | None = None
    cross_head_dim: Dimension | None = None
    time_embed_dim: Dimension | None = None
    rope: bool = False
    qk_norm: Literal["none", "rms", "layer"] = "none"
    params_b: Billions
    published_params_b: Billions
    source: Annotated[str, msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        if self.heads * self.head_dim != self.hidden:
            raise ValueError(
                f"heads ({self.heads}) x head_dim ({self.head_dim}) must equal hidden "
                f"({self.hidden})"
            )
        if self.family in ("flux", "hunyuan_video") and self.single_layers == 0:
            raise ValueError(f"a {self.family} denoiser needs single_layers > 0")


class TextEncoderSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One text encoder, run once per prompt batch.

    Attributes:
        kind: t5 (relative-position encoder, gated or plain FFN), clip (causal text
            transformer), bert (bidirectional encoder), llm (a decoder-only LLM used as encoder).
        seq: tokens the pipeline runs it on (its padded prompt length).
        gated: gated feed-forward (T5 v1.1 gated-GELU, LLM SwiGLU/GeGLU).
        params_b: parameters, billions (embedding counted once).
    """

    name: str
    kind: EncoderKind
    layers: LayerCount
    hidden: Dimension
    heads: Dimension
    head_dim: Dimension
    kv_heads: Dimension | None = None
    ffn: Dimension
    gated: bool = False
    vocab: Dimension
    seq: Dimension
    params_b: Billions


class VaeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The VAE decoder (latents to pixels).

    Attributes:
        kind: kl2d (SD/FLUX AutoencoderKL), dcae (SANA's deep-compression autoencoder),
            causal3d (video VAEs: causal 3-D convolutions).
        channels: decoder block widths as the config lists them (``block_out_channels``),
            the full-resolution stage first.
        blocks_per_stage: residual blocks per decoder stage (diffusers: layers_per_block + 1).
        attention_stages: DC-AE stages built from EfficientViT (linear-attention) blocks,
            counted from the lowest resolution.
        temporal_upsample_stages: causal3d stages that double the frame count.
        mid_attention: single-head attention of the middle block: over each image, each frame,
            the whole video (causal by frame), or none.
        decoder_params_m: decoder parameters, millions.
    """

    kind: VaeKind
    latent_channels: Dimension
    spatial_factor: Factor
    temporal_factor: Factor = 1
    channels: Annotated[tuple[Dimension, ...], msgspec.Meta(min_length=1, max_length=16)]
    blocks_per_stage: Annotated[int, msgspec.Meta(ge=1, le=64)]
    attention_stages: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    temporal_upsample_stages: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    mid_attention: Literal["image", "frame", "video", "none"] = "image"
    decoder_params_m: Millions
    source: Annotated[str, msgspec.Meta(min_length=1)]


class PipelineSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Defaults of the generation pipeline.

    Attributes:
        steps: denoising steps (the benchmark's setting where it differs from the library's).
        cfg: classifier-free guidance: ``batch`` doubles the denoiser batch, ``sequential``
            runs a second denoiser call per step (Wan), ``none`` for guidance-distilled models.
        text_tokens: text tokens the denoiser attends to.
        height, width: default resolution in pixels; ``frames`` for video models.
    """

    steps: Dimension
    cfg: CfgMode
    text_tokens: Dimension
    height: Dimension
    width: Dimension
    frames: Dimension | None = None
    source: Annotated[str, msgspec.Meta(min_length=1)]


class DiffusionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One text-to-image or text-to-video pipeline."""

    id: str
    nickname: str
    aliases: tuple[str, ...] = ()
    task: Task
    denoiser: DenoiserSpec
    text_encoders: Annotated[tuple[TextEncoderSpec, ...], msgspec.Meta(max_length=8)]
    vae: VaeSpec
    pipeline: PipelineSpec

    def __post_init__(self) -> None:
        video = self.task == "text-to-video"
        if video != (self.pipeline.frames is not None):
            raise ValueError("pipeline.frames is required for a video model and only for one")
        if video != (self.vae.kind == "causal3d"):
            raise ValueError("a video model needs a causal3d VAE, an image model a 2-D one")

    @property
    def is_video(self) -> bool:
        """Whether the pipeline generates videos."""
        return self.task == "text-to-video"

    @property
    def item(self) -> str:
        """What one output is called: image or video."""
        return "video" if self.is_video else "image"


def _configs_dir() -> Any:
    return resources.files("joulecast.diffusion") / "configs"


@cache
def _shipped() -> dict[str, dict[str, Any]]:
    """Every shipped file's mapping by file name."""
    out: dict[str, dict[str, Any]] = {}
    for entry in sorted(_configs_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = load_yaml_text(entry.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise SpecError(f"diffusion config {entry.name}: expected a mapping")
            out[entry.name] = data
    return out


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@cache
def _index() -> dict[str, str]:
    """Every accepted name (id, id without org, aliases; normalised) -> file name."""
    index: dict[str, str] = {}
    for file_name, data in _shipped().items():
        model_id = str(data.get("id", ""))
        for key in (model_id, model_id.split("/")[-1], *(data.get("aliases") or ())):
            index.setdefault(_norm(str(key)), file_name)
    return index


def diffusion_model_ids() -> tuple[str, ...]:
    """Hugging Face ids of every shipped diffusion pipeline, sorted."""
    return tuple(sorted((str(d["id"]) for d in _shipped().values()), key=str.lower))


@cache
def _load(file_name: str) -> DiffusionConfig:
    return validate(DiffusionConfig, _shipped()[file_name], f"diffusion config {file_name}")


def load_diffusion_config(name: str) -> DiffusionConfig:
    """The shipped pipeline of ``name`` (an HF id, the id without ``org/``, or an alias).

    Raises:
        UnknownNameError: no shipped pipeline matches; the message suggests close names.
    """
    file_name = _index().get(_norm(name))
    if file_name is None:
        aliases = {str(a) for d in _shipped().values() for a in d.get("aliases") or ()}
        raise UnknownNameError("diffusion model", name, set(diffusion_model_ids()) | aliases)
    return _load(file_name)


def diffusion_config_from_file(path: str | Path) -> DiffusionConfig:
    """Read a pipeline YAML of the shipped schema (validated like the shipped files)."""
    p = Path(path)
    return validate(DiffusionConfig, load_mapping(p, "diffusion config"), p.name)
