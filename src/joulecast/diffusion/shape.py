"""A generation request checked against the pipeline: resolution, frames, GPUs, parallelism.

Every impossible request fails with a one-line :class:`~joulecast.errors.WorkloadError` that
says what would work (the nearest valid resolution, frame counts, degrees).
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.diffusion.blocks import Parallel
from joulecast.diffusion.registry import DiffusionConfig
from joulecast.errors import WorkloadError

#: Largest GPU count a request may spread over (one HGX server).
MAX_GPUS = 8
#: Largest side in pixels and batch (a bound on the work one answer may describe).
MAX_PIXELS = 16_384
MAX_BATCH = 4096
MAX_FRAMES = 1024
MAX_STEPS = 10_000


@dataclass(frozen=True, slots=True)
class Shape:
    """One validated request.

    Attributes:
        batch: prompts (images or videos) generated together.
        height, width: output resolution in pixels; ``frames`` output frames (1 for images).
        steps: denoising steps.
        par: sequence parallelism (``ulysses × ring`` GPUs).
        latent_frames, latent_hw: the latent the denoiser and the VAE see.
        tokens: image or video tokens per sample in the denoiser.
        grid: tokens per frame as (rows, columns).
    """

    batch: int
    height: int
    width: int
    frames: int
    steps: int
    par: Parallel
    latent_frames: int
    latent_hw: tuple[int, int]
    tokens: int
    grid: tuple[int, int]


def _count(name: str, value: int | None, limit: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise WorkloadError(f"{name} must be an integer from 1 to {limit:,}, got {value!r}")


def resolve_shape(
    cfg: DiffusionConfig,
    *,
    batch: int,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    steps: int | None = None,
    num_gpus: int = 1,
    ulysses: int | None = None,
    ring: int | None = None,
) -> Shape:
    """Check a request against ``cfg`` and derive its latent and token counts.

    Defaults: the pipeline's resolution, frames and steps; on several GPUs without degrees,
    the largest Ulysses degree that divides both the GPUs and the heads, the rest ring.

    Raises:
        WorkloadError: a count out of range, a resolution the VAE and patch factors do not
            divide, frames a video model cannot take (or any for an image model),
            ``ulysses × ring != num_gpus``, heads not divisible by the Ulysses degree, or tokens
            that do not split over the GPUs.
    """
    p, d, v = cfg.pipeline, cfg.denoiser, cfg.vae
    height = p.height if height is None else height
    width = p.width if width is None else width
    steps = p.steps if steps is None else steps
    for name, value, limit in (
        ("batch", batch, MAX_BATCH),
        ("height", height, MAX_PIXELS),
        ("width", width, MAX_PIXELS),
        ("steps", steps, MAX_STEPS),
        ("num_gpus", num_gpus, MAX_GPUS),
        ("ulysses", ulysses, MAX_GPUS),
        ("ring", ring, MAX_GPUS),
        ("frames", frames, MAX_FRAMES),
    ):
        _count(name, value, limit)
    factor = v.spatial_factor * d.patch
    for name, value in (("height", height), ("width", width)):
        if value % factor:
            lo = max(factor, value - value % factor)
            raise WorkloadError(
                f"{cfg.id}: {name} {value} is not a multiple of {factor} (VAE factor "
                f"{v.spatial_factor} x patch {d.patch}); try {lo} or {lo + factor}"
            )
    latent_frames = _latent_frames(cfg, frames)
    out_frames = 1 if not cfg.is_video else (frames or p.frames or 1)
    par = _parallel(cfg, num_gpus, ulysses, ring)
    lat_h, lat_w = height // v.spatial_factor, width // v.spatial_factor
    grid = (lat_h // d.patch, lat_w // d.patch)
    tokens = latent_frames // d.patch_t * grid[0] * grid[1]
    if tokens % par.gpus:
        fits = [n for n in range(1, MAX_GPUS + 1) if tokens % n == 0]
        raise WorkloadError(
            f"{cfg.id}: {tokens:,} tokens at {height}x{width} do not split over {par.gpus} GPUs "
            f"(GPU counts that divide them: {', '.join(map(str, fits))})"
        )
    return Shape(
        batch, height, width, out_frames, steps, par, latent_frames, (lat_h, lat_w), tokens, grid
    )


def _latent_frames(cfg: DiffusionConfig, frames: int | None) -> int:
    """Latent frames of a video request (1 for an image model, which takes no frames)."""
    if not cfg.is_video:
        if frames not in (None, 1):
            raise WorkloadError(f"{cfg.id} generates images: it takes no --frames")
        return 1
    assert cfg.pipeline.frames is not None
    frames = cfg.pipeline.frames if frames is None else frames
    k = cfg.vae.temporal_factor
    if (frames - 1) % k:
        lo = max(1, frames - (frames - 1) % k)
        raise WorkloadError(
            f"{cfg.id} takes {k}n+1 frames (its VAE compresses time {k}x, keeping the first "
            f"frame); {frames} is not one: try {lo} or {lo + k}"
        )
    latent = (frames - 1) // k + 1
    pt = cfg.denoiser.patch_t
    return latent + (-latent) % pt  # CogVideoX1.5 pads the latent frames to its time patch


def _parallel(cfg: DiffusionConfig, gpus: int, ulysses: int | None, ring: int | None) -> Parallel:
    heads = cfg.denoiser.heads
    if ulysses is None and ring is None:
        ulysses = max(u for u in range(1, gpus + 1) if gpus % u == 0 and heads % u == 0)
    if ulysses is None:
        assert ring is not None
        ulysses = gpus // ring if gpus % ring == 0 else gpus
    if ring is None:
        ring = gpus // ulysses if gpus % ulysses == 0 else 1
    if ulysses * ring != gpus:
        pairs = [f"{u}x{gpus // u}" for u in range(1, gpus + 1) if gpus % u == 0]
        raise WorkloadError(
            f"ulysses x ring must equal num_gpus: {ulysses} x {ring} != {gpus} (for {gpus} GPUs: "
            f"{', '.join(pairs)})"
        )
    if heads % ulysses:
        ok = [u for u in range(1, gpus + 1) if gpus % u == 0 and heads % u == 0]
        raise WorkloadError(
            f"{cfg.id} has {heads} attention heads, not divisible by ulysses {ulysses}; on "
            f"{gpus} GPUs use ulysses {' or '.join(map(str, ok))} (ring the rest)"
        )
    return Parallel(ulysses, ring)
