"""``estimate_generation``: time, power and energy of one batch of images or videos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joulecast.coefficients.host import Host, resolve_host
from joulecast.diffusion.corrections import Corrections, shipped_corrections
from joulecast.diffusion.pipeline import StageEstimate, stage_passes
from joulecast.diffusion.registry import DiffusionConfig, load_diffusion_config
from joulecast.diffusion.shape import resolve_shape
from joulecast.errors import WorkloadError
from joulecast.hardware.spec import GPUSpec, resolve_gpu


@dataclass(frozen=True)
class GenerationEstimate:
    """One batch of a generation pipeline on ``num_gpus`` GPUs.

    Attributes:
        model: the pipeline's Hugging Face id.
        item: what one output is (image or video).
        stages: text encoder, denoiser and VAE, each with its time and energy.
    """

    model: str
    item: str
    gpu: str
    num_gpus: int
    ulysses: int
    ring: int
    batch: int
    height: int
    width: int
    frames: int
    steps: int
    stages: tuple[StageEstimate, ...]

    @property
    def batch_latency_s(self) -> float:
        """Wall time of the batch, prompts to pixels."""
        return sum(s.time_s for s in self.stages)

    @property
    def energy_j(self) -> float:
        """Energy of the batch, summed over the GPUs."""
        return sum(s.energy_j for s in self.stages)

    @property
    def avg_power_w(self) -> float:
        """Average power of all the GPUs together."""
        return self.energy_j / self.batch_latency_s

    @property
    def energy_per_item_j(self) -> float:
        """Energy per image (or video)."""
        return self.energy_j / self.batch

    @property
    def throughput_items_per_s(self) -> float:
        """Images (or videos) per second."""
        return self.batch / self.batch_latency_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``diffusion`` command's ``--format json``)."""
        plural = f"{self.item}s"
        out: dict[str, Any] = {
            "model": self.model,
            "gpu": self.gpu,
            "num_gpus": self.num_gpus,
            "ulysses": self.ulysses,
            "ring": self.ring,
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
        }
        if self.item == "video":
            out["frames"] = self.frames
        out |= {
            "steps": self.steps,
            "batch_latency_s": self.batch_latency_s,
            "avg_power_w": self.avg_power_w,
            "energy_j": self.energy_j,
            f"energy_per_{self.item}_j": self.energy_per_item_j,
            f"throughput_{plural}_per_s": self.throughput_items_per_s,
            "breakdown": {
                s.stage: {
                    "time_s": s.time_s,
                    "energy_j": s.energy_j,
                    "passes": s.passes,
                    "communication_s": s.comm_s,
                }
                for s in self.stages
            },
        }
        return out


def _weights_bytes(cfg: DiffusionConfig) -> float:
    billions = cfg.denoiser.params_b + sum(t.params_b for t in cfg.text_encoders)
    return 2.0 * (billions * 1e9 + cfg.vae.decoder_params_m * 1e6)


def estimate_generation(
    model: str | DiffusionConfig,
    gpu: str | GPUSpec,
    *,
    batch: int = 1,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    steps: int | None = None,
    num_gpus: int = 1,
    ulysses: int | None = None,
    ring: int | None = None,
    host: str | Host | None = None,
    power_cap_w: float | None = None,
    corrections: Corrections | None = None,
) -> GenerationEstimate:
    """Time and energy of generating ``batch`` images or videos with ``model`` on ``num_gpus``
    GPUs ``gpu`` (sequence parallel: ``ulysses × ring = num_gpus``).

    Args:
        model: a pipeline id or alias (``joulecast.diffusion.diffusion_model_ids``), or a config.
        gpu: a shipped GPU id, a spec file path, or a :class:`GPUSpec`.
        batch: prompts generated together.
        height, width: resolution in pixels; default the pipeline's.
        frames: output frames of a video model; default the pipeline's.
        steps: denoising steps; default the pipeline's.
        num_gpus: GPUs the batch is spread over (1 to 8).
        ulysses, ring: sequence-parallel degrees; default: the largest Ulysses degree that
            divides the heads, the rest ring.
        host: the machine issuing the kernels; default the part's default host.
        power_cap_w: power limit of each GPU; default the part's default limit.
        corrections: diffusion corrections; default the shipped ones
            (:func:`shipped_corrections`); ``Corrections()`` is the pure forecast.

    Raises:
        JoulecastError: an unknown model or GPU, or a request the pipeline cannot run (one
            line saying what would work).
    """
    cfg = model if isinstance(model, DiffusionConfig) else load_diffusion_config(model)
    spec = resolve_gpu(gpu)
    shape = resolve_shape(
        cfg,
        batch=batch,
        height=height,
        width=width,
        frames=frames,
        steps=steps,
        num_gpus=num_gpus,
        ulysses=ulysses,
        ring=ring,
    )
    need = _weights_bytes(cfg)
    if need > spec.memory_capacity_bytes:
        raise WorkloadError(
            f"{cfg.id}: its weights need {need / 1e9:.0f} GB on every GPU (sequence parallelism "
            f"does not split them) but {spec.id} has {spec.memory_capacity_gb:g} GB"
        )
    machine = resolve_host(host) if host is not None else None
    corr = shipped_corrections() if corrections is None else corrections
    parts = tuple(
        p.estimate(corr)
        for p in stage_passes(cfg, shape, spec, host=machine, power_cap_w=power_cap_w)
    )
    return GenerationEstimate(
        model=cfg.id,
        item=cfg.item,
        gpu=spec.id,
        num_gpus=shape.par.gpus,
        ulysses=shape.par.ulysses,
        ring=shape.par.ring,
        batch=shape.batch,
        height=shape.height,
        width=shape.width,
        frames=shape.frames,
        steps=shape.steps,
        stages=parts,
    )
