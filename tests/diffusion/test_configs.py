"""Pipelines as data: every config loads, counts match the published checkpoints, names resolve."""

from __future__ import annotations

import pytest

from joulecast.diffusion import diffusion_model_ids, load_diffusion_config
from joulecast.diffusion.params import denoiser_params, encoder_params, vae_decoder_params
from joulecast.diffusion.registry import DiffusionConfig
from joulecast.errors import JoulecastError, SpecError, UnknownNameError
from joulecast.schema import validate

V3_MODELS = (
    "stabilityai/stable-diffusion-3.5-medium",
    "stabilityai/stable-diffusion-3.5-large",
    "black-forest-labs/FLUX.1-dev",
    "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
    "Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers",
    "Efficient-Large-Model/SANA1.5_1.6B_1024px_diffusers",
    "Efficient-Large-Model/SANA1.5_4.8B_1024px_diffusers",
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    "zai-org/CogVideoX-2b",
    "zai-org/CogVideoX1.5-5B",
    "tencent/HunyuanVideo",
)


def test_every_v3_model_is_shipped_with_sources() -> None:
    ids = set(diffusion_model_ids())
    assert set(V3_MODELS) <= ids
    for model in ids:
        cfg = load_diffusion_config(model)
        assert cfg.denoiser.source and cfg.vae.source and cfg.pipeline.source


@pytest.mark.parametrize("model", sorted(diffusion_model_ids()))
def test_parameter_counts_match_the_checkpoints(model: str) -> None:
    cfg = load_diffusion_config(model)
    # denoiser: within 5 % of the count of the diffusers class built from the same fields
    counted = denoiser_params(cfg.denoiser) / 1e9
    assert counted == pytest.approx(cfg.denoiser.params_b, rel=0.05)
    # the model cards round (Wan 1.3B holds 1.42B, CogVideoX-2b 1.69B + a sin-cos table)
    assert counted == pytest.approx(cfg.denoiser.published_params_b, rel=0.16)
    for enc in cfg.text_encoders:
        assert encoder_params(enc) / 1e9 == pytest.approx(enc.params_b, rel=0.05), enc.name
    assert vae_decoder_params(cfg.vae) / 1e6 == pytest.approx(cfg.vae.decoder_params_m, rel=0.15)


def test_names_resolve_case_insensitively_and_by_alias() -> None:
    flux = load_diffusion_config("black-forest-labs/FLUX.1-dev")
    assert load_diffusion_config("FLUX.1-dev") is flux
    assert load_diffusion_config("flux") is flux
    assert load_diffusion_config("BLACK-FOREST-LABS/flux.1-dev") is flux


def test_unknown_name_fails_with_suggestions() -> None:
    with pytest.raises(UnknownNameError, match="did you mean"):
        load_diffusion_config("flux-devv")


def test_inconsistent_configs_are_rejected() -> None:
    from joulecast.diffusion.registry import _shipped

    data = dict(_shipped()["black-forest-labs--flux.1-dev.yaml"])
    data["denoiser"] = {**data["denoiser"], "heads": 23}
    with pytest.raises(SpecError, match="head_dim"):
        validate(DiffusionConfig, data, "bad.yaml")
    data = dict(_shipped()["black-forest-labs--flux.1-dev.yaml"], task="text-to-video")
    with pytest.raises(JoulecastError):
        validate(DiffusionConfig, data, "bad.yaml")
