"""Least-energy deployment of one model: search GPU × count × parallelism × batch × clock.

Every candidate is a steady-state serving point (:mod:`joulecast.serving.engine`), evaluated for
all clocks of a GPU at once (the estimator's vectorised :func:`~joulecast.estimator.evaluate`;
a clock's result does not depend on which clocks are evaluated with it, so each candidate equals
``joulecast serve`` at that clock). Clocks whose power would exceed the part's default limit
are left out (the limiter would lower them to a clock already in the grid). The policy: least
energy per output token among the candidates meeting every constraint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from joulecast.coefficients import coefficients_for
from joulecast.coefficients.host import default_serving_host_id, load_host
from joulecast.dvfs import dvfs_curve, regulated_power_w
from joulecast.errors import JoulecastError, WorkloadError
from joulecast.estimator import evaluate
from joulecast.hardware.spec import GPUSpec, resolve_gpu
from joulecast.models.registry import ModelConfig, load_model_config
from joulecast.serving.engine import StepShape, _check_request, _precision, combine
from joulecast.serving.frontier import SWEEP_BATCHES
from joulecast.serving.layout import Layout, resolve_layout
from joulecast.serving.memory import serving_memory
from joulecast.timeline import compile_workload
from joulecast.workload.ir import Precision

DEFAULT_GPUS = ("h100-sxm", "h200", "b200", "a100-sxm4-80gb")
GPU_COUNTS = (1, 2, 4, 8)
CLOCKS_PER_GPU = 8


@dataclass(frozen=True)
class Candidate:
    """One deployment and its steady-state serving metrics."""

    gpu: str
    num_gpus: int
    tp: int
    ep: int
    dp: int
    batch: int
    running_batch: int
    sm_clock_mhz: float
    power_cap_w: float
    energy_per_token_j: float
    itl_ms: float
    ttft_ms: float
    output_throughput_tok_s: float
    avg_power_w: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class PlanResult:
    """The chosen deployment, the runners-up and everything evaluated.

    Attributes:
        best: least energy per token meeting every constraint.
        candidates: the feasible ones, least energy first.
        evaluated: every candidate evaluated (feasible or not), for the frontier plot.
        fastest: the lowest-ITL feasible candidate (what a latency-first choice would take).
    """

    best: Candidate
    candidates: tuple[Candidate, ...]
    evaluated: tuple[Candidate, ...]
    fastest: Candidate

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """JSON-ready dict: ``best`` and the ``top`` candidates."""
        return {
            "best": self.best.to_dict(),
            "fastest": self.fastest.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates[:top]],
            "evaluated": len(self.evaluated),
            "feasible": len(self.candidates),
        }


def _clocks(spec: GPUSpec, count: int) -> np.ndarray:
    grid = np.asarray(spec.supported_clocks_mhz(), dtype=np.float64)
    low = grid[grid >= 0.5 * spec.max_clock_mhz]
    idx = np.unique(np.round(np.linspace(0, len(low) - 1, count)).astype(int))
    return np.asarray(low[idx], dtype=np.float64)


def _layouts(cfg: ModelConfig, n: int) -> list[Layout]:
    options: list[Layout] = []
    for ep in (None, n) if cfg.is_moe and n > 1 else (None,):
        try:
            options.append(resolve_layout(cfg, n, ep=ep))
        except JoulecastError:
            continue
    return options


def plan(
    model: str | ModelConfig,
    input_tokens: int,
    output_tokens: int,
    *,
    max_itl_ms: float | None = None,
    max_ttft_ms: float | None = None,
    min_throughput_tok_s: float | None = None,
    gpus: Sequence[str | GPUSpec] = DEFAULT_GPUS,
    max_gpus: int = 8,
    power_budget_w: float | None = None,
    precision: str = "auto",
    batches: Sequence[int] = SWEEP_BATCHES,
    clocks_per_gpu: int = CLOCKS_PER_GPU,
) -> PlanResult:
    """Search every deployment of ``model`` for the least energy per token within the limits.

    Raises:
        WorkloadError: bad limits, or no candidate meets them (the message names the closest).
    """
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    _check_request(1, input_tokens, output_tokens, cfg)
    for name, value in (("max-itl-ms", max_itl_ms), ("max-ttft-ms", max_ttft_ms),
                        ("min-throughput-tok-s", min_throughput_tok_s),
                        ("power-budget-w", power_budget_w)):  # fmt: skip
        if value is not None and not value > 0:
            raise WorkloadError(f"--{name} must be positive (got {value:g})")
    if not 1 <= max_gpus <= 64:
        raise WorkloadError(f"--max-gpus must be 1..64 (got {max_gpus})")
    weights, compute = _precision(cfg, precision)
    host = load_host(default_serving_host_id()).with_cuda_graphs()
    evaluated: list[Candidate] = []
    for gpu in gpus:
        spec = resolve_gpu(gpu)
        if compute == "fp8" and not spec.supports_tensor(Precision.FP8):
            continue
        evaluated += _search_gpu(cfg, spec, weights, compute, input_tokens, output_tokens,
                                 host, max_gpus, batches, clocks_per_gpu)  # fmt: skip
    if not evaluated:
        raise WorkloadError(f"{cfg.id} fits none of {', '.join(map(str, gpus))} within 8 GPUs")

    def ok(c: Candidate) -> bool:
        return (
            (max_itl_ms is None or c.itl_ms <= max_itl_ms)
            and (max_ttft_ms is None or c.ttft_ms <= max_ttft_ms)
            and (min_throughput_tok_s is None or c.output_throughput_tok_s >= min_throughput_tok_s)
            and (power_budget_w is None or c.avg_power_w <= power_budget_w)
        )

    feasible = sorted((c for c in evaluated if ok(c)), key=lambda c: c.energy_per_token_j)
    if not feasible:
        quickest = min(evaluated, key=lambda c: c.itl_ms)
        raise WorkloadError(
            "no deployment meets the limits; the fastest reaches ITL "
            f"{quickest.itl_ms:.1f} ms on {quickest.num_gpus}x {quickest.gpu} "
            f"(batch {quickest.batch}, {quickest.avg_power_w:,.0f} W)"
        )
    fastest = min(feasible, key=lambda c: c.itl_ms)
    return PlanResult(feasible[0], tuple(feasible), tuple(evaluated), fastest)


def _search_gpu(
    cfg: ModelConfig,
    spec: GPUSpec,
    weights: str,
    compute: str,
    input_tokens: int,
    output_tokens: int,
    host: Any,
    max_gpus: int,
    batches: Sequence[int],
    clocks_per_gpu: int,
) -> list[Candidate]:
    coeffs = coefficients_for(spec)
    curve = dvfs_curve(spec)
    clocks = _clocks(spec, clocks_per_gpu)
    cap = spec.default_power_limit_w
    limit = regulated_power_w(cap)
    out: list[Candidate] = []
    for n in (g for g in GPU_COUNTS if g <= max_gpus):
        for layout in _layouts(cfg, n):
            mem = serving_memory(cfg, spec, layout, weights, input_tokens, output_tokens)
            if mem.max_running_batch < 1:
                continue
            for b in batches:
                running = min(b, mem.max_running_batch)
                shape = StepShape(cfg, spec, layout, running, input_tokens, output_tokens,
                                  compute)  # fmt: skip
                plain = evaluate(compile_workload(shape.workload(None), spec), coeffs, clocks,
                                 curve, host)  # fmt: skip
                mixed = evaluate(compile_workload(shape.workload(shape.chunk), spec), coeffs,
                                 clocks, curve, host)  # fmt: skip
                m = combine(shape, host, plain.time_s, plain.energy_j, plain.idle_w,
                            mixed.time_s, mixed.energy_j)  # fmt: skip
                for i, clock in enumerate(clocks):
                    if plain.power_w[i] > limit or mixed.power_w[i] > limit:
                        continue  # the limiter would run it at a lower clock of the grid
                    out.append(
                        Candidate(
                            gpu=spec.id,
                            num_gpus=n,
                            tp=layout.tp,
                            ep=layout.ep,
                            dp=layout.dp,
                            batch=b,
                            running_batch=running,
                            sm_clock_mhz=float(clock),
                            power_cap_w=cap,
                            energy_per_token_j=float(m.energy_per_token_j[i]),
                            itl_ms=float(m.itl_s[i]) * 1e3,
                            ttft_ms=float(m.ttft_s[i]) * 1e3,
                            output_throughput_tok_s=float(m.throughput_tok_s[i]),
                            avg_power_w=float(m.power_w[i]),
                        )
                    )
                if running < b:
                    break
    return out
