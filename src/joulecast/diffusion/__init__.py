"""Text-to-image and text-to-video generation: energy per image and per video on 1-8 GPUs.

Pipelines are data (``configs/*.yaml``: denoiser, text encoders, VAE, defaults, sources); a
batch is three stages built from the operator IR and estimated with :func:`joulecast.estimate`,
with sequence parallelism (Ulysses and ring attention) over several GPUs. See
``docs/diffusion.md``.
"""

from joulecast.diffusion.api import GenerationEstimate, estimate_generation
from joulecast.diffusion.registry import (
    DiffusionConfig,
    diffusion_config_from_file,
    diffusion_model_ids,
    load_diffusion_config,
)

__all__ = [
    "DiffusionConfig",
    "GenerationEstimate",
    "diffusion_config_from_file",
    "diffusion_model_ids",
    "estimate_generation",
    "load_diffusion_config",
]
