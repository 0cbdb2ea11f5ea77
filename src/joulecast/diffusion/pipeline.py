"""A text-to-image or text-to-video generation as a workload: time and energy per batch.

Three stages, each built from the operator IR and estimated with :func:`joulecast.estimate`
(eager PyTorch, no CUDA graphs: diffusers and xDiT run eager; the part's default host):

1. **text encoders**, once per batch: the prompts, and the negative prompts when the pipeline
   runs classifier-free guidance (two calls of ``batch`` prompts);
2. **denoiser**, ``steps`` times: one pass of ``2·batch`` samples (guidance by batch concat),
   two passes of ``batch`` (Wan: a second call per step), or one of ``batch``
   (guidance-distilled FLUX.1-dev and HunyuanVideo);
3. **VAE decoder**, once: the latents of the whole batch.

On ``N = ulysses × ring`` GPUs every GPU runs the text encoders and the VAE on the whole batch
(xDiT's default: each rank encodes its prompts and decodes the gathered latents) and its
``1/N`` of the denoiser's image tokens; a denoiser pass also waits on its collectives
(:mod:`joulecast.kernels.collective`): ``T = max(T_compute + H_coll, T_busy + C + T₀/2)``,
where ``H_coll`` is the host time to issue the collectives (one module-level call each),
``C`` the communication the GPU waits on (Ulysses all-to-alls and gathers in full; a ring
step's KV exchange only where it outlasts that step's attention launch) and ``T₀`` the host's
time per pass. While it waits a GPU draws its idle power, plus the link energy of what it
sends. Energy is summed over the GPUs, time is the wall time of one GPU.

Each pass is estimated once per shape and cached (:class:`PassCost` keeps the estimate's
ingredients); the diffusion corrections (:mod:`joulecast.diffusion.corrections`) are applied
afterwards, so that fitting them re-estimates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from joulecast.coefficients.host import Host
from joulecast.diffusion.blocks import Graph, Parallel, RingStep
from joulecast.diffusion.corrections import IDENTITY, Corrections
from joulecast.diffusion.denoiser import build_denoiser
from joulecast.diffusion.encoders import build_text_encoder
from joulecast.diffusion.registry import DiffusionConfig
from joulecast.diffusion.shape import Shape
from joulecast.diffusion.vae import build_vae_decoder
from joulecast.dvfs import regulated_power_w
from joulecast.estimator import Estimate, estimate, host_for
from joulecast.hardware.spec import GPUSpec
from joulecast.kernels.arch import arch_params
from joulecast.kernels.collective import Collective, collective_energy_j, collective_time_s
from joulecast.workload.ir import Op, Workload


@dataclass(frozen=True, slots=True)
class PassCost:
    """One pass of a stage on one GPU: the estimate's ingredients, corrections applied late.

    Attributes:
        compute_s: the estimate's wall time of the compute launches.
        compute_j: their energy.
        busy_s: GPU kernel time within ``compute_s``.
        idle_w: idle power at the pass's clock.
        attention_s, attention_j: time and energy of the fused-attention launches.
        blocking_s: collectives the GPU waits on in full (Ulysses all-to-alls, gathers).
        ring_steps: (KV exchange time, attention launch time) of each ring step.
        link_j: link energy of everything the GPU sends.
        collectives: collective calls the host issues.
        module_call_s: host time of one module-level call; ``pass_overhead_s`` per pass.
        sm_clock_mhz: SM clock the pass runs at (below the maximum when the power cap binds).
        attention_corrected: the part's attention kernel model overlaps the softmax with the
            tensor-core MMAs (FlashAttention-3 on Hopper and later), so the attention factor
            applies; on Ampere/Ada the kernel model is FlashAttention-2 already.
        kind: text_encoder, denoiser or vae (which correction applies).
        limit_w: average power the power limiter holds a GPU at (cap minus its guard band).
    """

    compute_s: float
    compute_j: float
    busy_s: float
    idle_w: float
    attention_s: float
    attention_j: float
    blocking_s: float = 0.0
    ring_steps: tuple[tuple[float, float], ...] = ()
    link_j: float = 0.0
    collectives: int = 0
    module_call_s: float = 0.0
    pass_overhead_s: float = 0.0
    sm_clock_mhz: float = 0.0
    attention_corrected: bool = False
    kind: str = "denoiser"
    limit_w: float = float("inf")

    def _factor(self, corr: Corrections) -> float:
        return corr.attention_factor if self.attention_corrected else 1.0

    def _scale(self, corr: Corrections) -> float:
        return corr.vae_factor if self.kind == "vae" else 1.0

    def comm_s(self, corr: Corrections = IDENTITY) -> float:
        """Communication the GPU waits on: blocking collectives, and each ring step's exchange
        where it outlasts that step's attention launch."""
        a = self._factor(corr)
        return self.blocking_s + sum(max(0.0, x - a * k) for x, k in self.ring_steps)

    def _compute_s(self, corr: Corrections) -> float:
        return self._scale(corr) * self.compute_s + (self._factor(corr) - 1.0) * self.attention_s

    def time_s(self, corr: Corrections = IDENTITY) -> float:
        """Wall time of the pass."""
        compute = self._compute_s(corr)
        if not self.collectives:
            return compute
        issue = self.collectives * (self.module_call_s + corr.collective_host_s)
        busy = compute - (self.compute_s - self.busy_s)
        return max(compute + issue, busy + self.comm_s(corr) + self.pass_overhead_s / 2)

    def energy_j(self, corr: Corrections = IDENTITY) -> float:
        """Energy of one GPU over the pass: the estimate's, slower attention at its own power
        (the SMs stay busy issuing), a slower VAE's extra time and waiting time at idle power
        (stalls), the links' energy; at most the limiter's power."""
        time_s = self.time_s(corr)
        compute = (
            self.compute_j
            + (self._scale(corr) - 1.0) * self.compute_s * self.idle_w
            + (self._factor(corr) - 1.0) * self.attention_j
        )
        waiting = time_s - self._compute_s(corr)
        return min(compute + waiting * self.idle_w + self.link_j, self.limit_w * time_s)


@dataclass(frozen=True, slots=True)
class StageEstimate:
    """Time and energy of one stage for the whole batch.

    Attributes:
        stage: text_encoder, denoiser or vae.
        passes: passes of the stage per batch (denoiser: steps x calls per step).
        time_s: wall time of all the passes.
        energy_j: energy of all the passes on all the GPUs.
        comm_s: communication time the GPUs wait on, over all the passes.
    """

    stage: str
    passes: int
    time_s: float
    energy_j: float
    comm_s: float = 0.0


@dataclass(frozen=True, eq=False)
class HostKey:
    """A host as a cache key (a :class:`Host` holds a list, so it is not hashable)."""

    host: Host

    def __hash__(self) -> int:
        h = self.host
        return hash((h.id, h.host_op_s, h.host_module_op_s, h.pass_overhead_s))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostKey) and self.host == other.host


def _kernel_time_s(op: Op, gpu: GPUSpec, clock_mhz: float, host: Host) -> float:
    return _single_op(op, gpu, clock_mhz, HostKey(host)).gpu_busy_s


@lru_cache(maxsize=4096)
def _single_op(op: Op, gpu: GPUSpec, clock_mhz: float, host: HostKey) -> Estimate:
    return estimate(
        Workload("op", (op,)), gpu, sm_clock_mhz=clock_mhz, host=host.host, detail=False
    )


def pass_cost(
    name: str,
    ops: tuple[Op, ...],
    gpu: GPUSpec,
    host: Host,
    *,
    kind: str = "denoiser",
    comms: tuple[Collective, ...] = (),
    ring: tuple[RingStep, ...] = (),
    power_cap_w: float | None = None,
) -> PassCost:
    """Estimate one pass of ``ops`` on one GPU that also joins ``comms`` and ``ring`` steps."""
    est = estimate(Workload(name, ops), gpu, host=host, power_cap_w=power_cap_w, cuda_graphs=False)
    attn = next((b for b in est.breakdown if b.op_class == "attention"), None)
    steps = tuple(
        (
            collective_time_s(step.exchange, gpu),
            _kernel_time_s(step.attention, gpu, est.sm_clock_mhz, host),
        )
        for step in ring
    )
    return PassCost(
        compute_s=est.time_s,
        compute_j=est.energy_j,
        busy_s=est.gpu_busy_s,
        idle_w=est.idle_power_w,
        attention_s=attn.time_ms / 1e3 if attn else 0.0,
        attention_j=attn.energy_j if attn else 0.0,
        blocking_s=sum(collective_time_s(c, gpu) for c in comms),
        ring_steps=steps,
        link_j=sum(collective_energy_j(c, gpu) for c in (*comms, *(r.exchange for r in ring))),
        collectives=len(comms) + len(ring),
        module_call_s=host.host_module_op_s,
        pass_overhead_s=host.pass_overhead_s,
        sm_clock_mhz=est.sm_clock_mhz,
        attention_corrected=arch_params(gpu).operand_reload_factor < 2,
        kind=kind,
        limit_w=regulated_power_w(est.power_cap_w),
    )


@lru_cache(maxsize=1024)
def denoiser_pass(
    cfg: DiffusionConfig,
    gpu: GPUSpec,
    host: HostKey,
    batch: int,
    tokens: int,
    grid: tuple[int, int],
    par: Parallel,
    power_cap_w: float | None = None,
) -> PassCost:
    """One denoiser pass of ``batch`` samples on one of the ``par.gpus`` GPUs (cached)."""
    g: Graph = build_denoiser(
        cfg.denoiser,
        batch=batch,
        tokens=tokens,
        text=cfg.pipeline.text_tokens,
        grid=grid,
        par=par,
    )
    cost: PassCost = pass_cost(
        f"{cfg.id} denoiser",
        g.ops,
        gpu,
        host.host,
        comms=tuple(g.comms),
        ring=tuple(g.ring),
        power_cap_w=power_cap_w,
    )
    return cost


@lru_cache(maxsize=1024)
def encoder_pass(
    cfg: DiffusionConfig, index: int, gpu: GPUSpec, host: HostKey, batch: int, cap: float | None
) -> PassCost:
    """One call of text encoder ``index`` on ``batch`` prompts (cached)."""
    spec = cfg.text_encoders[index]
    ops = build_text_encoder(spec, batch)
    return pass_cost(
        f"{cfg.id} {spec.name}", ops, gpu, host.host, kind="text_encoder", power_cap_w=cap
    )


@lru_cache(maxsize=1024)
def vae_pass(
    cfg: DiffusionConfig,
    gpu: GPUSpec,
    host: HostKey,
    batch: int,
    latent_frames: int,
    latent_hw: tuple[int, int],
    cap: float | None,
) -> PassCost:
    """One VAE decode of ``batch`` latents (cached)."""
    ops = build_vae_decoder(cfg.vae, batch=batch, latent_frames=latent_frames, latent_hw=latent_hw)
    return pass_cost(f"{cfg.id} VAE decoder", ops, gpu, host.host, kind="vae", power_cap_w=cap)


def denoiser_calls(cfg: DiffusionConfig, batch: int) -> tuple[int, int]:
    """(calls per step, samples per call) under the pipeline's classifier-free guidance."""
    mode = cfg.pipeline.cfg
    if mode == "batch":
        return 1, 2 * batch
    if mode == "sequential":
        return 2, batch
    return 1, batch


@dataclass(frozen=True, slots=True)
class StagePasses:
    """A stage as its passes: ``(cost of one pass, passes per batch)`` pairs, on ``gpus`` GPUs."""

    stage: str
    passes: tuple[tuple[PassCost, int], ...]
    gpus: int

    def estimate(self, corr: Corrections = IDENTITY) -> StageEstimate:
        """Time and energy of the stage for the batch, with ``corr`` applied."""
        return StageEstimate(
            self.stage,
            sum(k for _, k in self.passes),
            sum(k * p.time_s(corr) for p, k in self.passes),
            sum(k * p.energy_j(corr) for p, k in self.passes) * self.gpus,
            sum(k * p.comm_s(corr) for p, k in self.passes),
        )


def stage_passes(
    cfg: DiffusionConfig,
    shape: Shape,
    gpu: GPUSpec,
    *,
    host: Host | None = None,
    power_cap_w: float | None = None,
) -> tuple[StagePasses, ...]:
    """The passes of the three stages for one batch on ``shape.par.gpus`` GPUs (cached)."""
    machine = HostKey(host or host_for(gpu))
    n = shape.par.gpus
    prompt_calls = 1 if cfg.pipeline.cfg == "none" else 2
    encoders = tuple(
        (encoder_pass(cfg, i, gpu, machine, shape.batch, power_cap_w), prompt_calls)
        for i in range(len(cfg.text_encoders))
    )
    calls, samples = denoiser_calls(cfg, shape.batch)
    step = denoiser_pass(
        cfg, gpu, machine, samples, shape.tokens, shape.grid, shape.par, power_cap_w
    )
    vae = vae_pass(
        cfg, gpu, machine, shape.batch, shape.latent_frames, shape.latent_hw, power_cap_w
    )
    return (
        StagePasses("text_encoder", encoders, n),
        StagePasses("denoiser", ((step, shape.steps * calls),), n),
        StagePasses("vae", ((vae, 1),), n),
    )
