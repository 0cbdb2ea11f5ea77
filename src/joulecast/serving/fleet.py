"""Place several served models on a GPU inventory under a power budget at least energy.

For each model the deployments that meet its latency limits come from :func:`plan`; a replica
of deployment ``c`` serves ``T_c`` output tokens/s and draws ``P_c`` watts (steady state). The
assignment is a mixed-integer program, solved by HiGHS (:func:`scipy.optimize.milp`)::

    minimise    Σ x_c · P_c                         (fleet power: energy per hour / 3600)
    subject to  Σ_{c of m} x_c · T_c ≥ D_m           (every model's demand, tokens/s)
                Σ_{c on g} x_c · n_c ≤ inventory_g   (GPUs of each type)
                Σ x_c · P_c ≤ budget                 (power budget)
                x_c ∈ {0, 1, 2, ...}                 (replicas)

The baseline for comparison: each model on its smallest deployment that meets its limits (the
fewest GPUs, then the largest batch, at the maximum clock), with as many replicas as its demand
needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from joulecast.errors import WorkloadError
from joulecast.serving.plan import Candidate, plan

# Deployments kept per model and GPU type: the least energy per token.
KEEP_PER_GPU = 12


@dataclass(frozen=True)
class ModelDemand:
    """One model to serve.

    Attributes:
        model: model id or alias.
        requests_per_s: request rate.
        input_tokens: mean prompt tokens.
        output_tokens: mean generated tokens.
        max_itl_ms: inter-token latency limit (median).
        max_ttft_ms: time-to-first-token limit.
    """

    model: str
    requests_per_s: float
    input_tokens: int
    output_tokens: int
    max_itl_ms: float | None = None
    max_ttft_ms: float | None = None

    @property
    def tokens_per_s(self) -> float:
        """Output tokens per second the fleet must serve."""
        return self.requests_per_s * self.output_tokens


@dataclass(frozen=True)
class Placement:
    """A model's share of the fleet: one deployment, replicated."""

    model: str
    deployment: Candidate
    replicas: int

    @property
    def power_w(self) -> float:
        return self.replicas * self.deployment.avg_power_w

    @property
    def gpus(self) -> int:
        return self.replicas * self.deployment.num_gpus

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "model": self.model,
            "replicas": self.replicas,
            "gpus": self.gpus,
            "power_w": self.power_w,
            "deployment": asdict(self.deployment),
        }


@dataclass(frozen=True)
class FleetResult:
    """The optimal assignment beside the naive baseline."""

    placements: tuple[Placement, ...]
    baseline: tuple[Placement, ...]
    power_budget_w: float | None
    inventory: Mapping[str, int]

    @property
    def power_w(self) -> float:
        return sum(p.power_w for p in self.placements)

    @property
    def baseline_power_w(self) -> float:
        return sum(p.power_w for p in self.baseline)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "energy_per_hour_kwh": self.power_w * 3600 / 3.6e6,
            "baseline_energy_per_hour_kwh": self.baseline_power_w * 3600 / 3.6e6,
            "power_w": self.power_w,
            "baseline_power_w": self.baseline_power_w,
            "saving": 1 - self.power_w / self.baseline_power_w if self.baseline_power_w else 0.0,
            "placements": [p.to_dict() for p in self.placements],
            "baseline": [p.to_dict() for p in self.baseline],
        }


def _candidates(d: ModelDemand, gpus: Sequence[str]) -> list[Candidate]:
    result = plan(d.model, d.input_tokens, d.output_tokens, max_itl_ms=d.max_itl_ms,
                  max_ttft_ms=d.max_ttft_ms, gpus=list(gpus), clocks_per_gpu=4)  # fmt: skip
    kept: list[Candidate] = []
    for g in gpus:
        on_g = [c for c in result.candidates if c.gpu == g]
        kept += sorted(on_g, key=lambda c: c.energy_per_token_j)[:KEEP_PER_GPU]
    return kept


def _baseline(d: ModelDemand, cands: Sequence[Candidate]) -> Placement:
    smallest = min(cands, key=lambda c: (c.num_gpus, -c.sm_clock_mhz, -c.batch))
    replicas = math.ceil(d.tokens_per_s / smallest.output_throughput_tok_s)
    return Placement(d.model, smallest, replicas)


def solve_fleet(
    demands: Sequence[ModelDemand],
    inventory: Mapping[str, int],
    power_budget_w: float | None = None,
) -> FleetResult:
    """The least-power assignment of ``demands`` to ``inventory`` (see module doc).

    Raises:
        WorkloadError: a model no deployment serves within its limits, or an inventory or
            budget that cannot carry the demand (with by how much).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    if not demands:
        raise WorkloadError("the fleet spec lists no models")
    gpus = [g for g, n in inventory.items() if n > 0]
    if not gpus:
        raise WorkloadError("the inventory has no GPUs")
    cands: list[tuple[int, Candidate]] = []
    baseline: list[Placement] = []
    for i, d in enumerate(demands):
        mine = _candidates(d, gpus)
        if not mine:
            raise WorkloadError(f"{d.model}: no deployment on {', '.join(gpus)} meets its limits")
        cands += [(i, c) for c in mine]
        baseline.append(_baseline(d, mine))
    power = np.array([c.avg_power_w for _, c in cands])
    rows, lo, hi = [], [], []
    for i, d in enumerate(demands):
        rows.append([c.output_throughput_tok_s if m == i else 0.0 for m, c in cands])
        lo.append(d.tokens_per_s)
        hi.append(np.inf)
    for g in gpus:
        rows.append([float(c.num_gpus) if c.gpu == g else 0.0 for _, c in cands])
        lo.append(0.0)
        hi.append(float(inventory[g]))
    if power_budget_w is not None:
        rows.append(list(power))
        lo.append(0.0)
        hi.append(power_budget_w)
    res = milp(c=power, constraints=LinearConstraint(np.array(rows), lo, hi),
               integrality=np.ones(len(cands)), bounds=Bounds(0, np.inf))  # fmt: skip
    if res.x is None:
        need = sum(p.gpus for p in baseline)
        budget = f"a {power_budget_w:,.0f} W budget" if power_budget_w else "no power budget"
        raise WorkloadError(
            f"the inventory ({sum(inventory.values())} GPUs, {budget}) cannot carry the demand: "
            f"the smallest deployments alone need {need} GPUs and "
            f"{sum(p.power_w for p in baseline):,.0f} W"
        )
    placements = [
        Placement(demands[m].model, c, round(x))
        for (m, c), x in zip(cands, res.x, strict=True)
        if round(x) > 0
    ]
    return FleetResult(tuple(placements), tuple(baseline), power_budget_w, dict(inventory))


def load_fleet_spec(path: Path) -> tuple[list[ModelDemand], dict[str, int], float | None]:
    """Read a fleet spec (YAML): ``power_budget_w``, ``gpus: {id: count}``, ``models: [...]``.

    Raises:
        WorkloadError: a malformed spec, one line naming the problem.
    """
    from joulecast.yamlio import load_mapping

    doc = load_mapping(path, "fleet spec", WorkloadError)
    inv = doc.get("gpus")
    if not isinstance(inv, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in inv.values()
    ):
        raise WorkloadError(f"{path.name}: 'gpus' must map GPU ids to GPU counts")
    models = doc.get("models")
    if not isinstance(models, list) or not models:
        raise WorkloadError(f"{path.name}: 'models' must be a non-empty list")
    demands = []
    for k, m in enumerate(models):
        if not isinstance(m, dict):
            raise WorkloadError(f"{path.name}: models[{k}] must be a mapping")
        try:
            demands.append(
                ModelDemand(
                    model=str(m["model"]),
                    requests_per_s=float(m["requests_per_s"]),
                    input_tokens=int(m["input_tokens"]),
                    output_tokens=int(m["output_tokens"]),
                    max_itl_ms=float(m["max_itl_ms"]) if "max_itl_ms" in m else None,
                    max_ttft_ms=float(m["max_ttft_ms"]) if "max_ttft_ms" in m else None,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkloadError(f"{path.name}: models[{k}]: missing or bad {exc}") from None
        if not demands[-1].requests_per_s > 0:
            raise WorkloadError(f"{path.name}: models[{k}]: requests_per_s must be positive")
    budget = doc.get("power_budget_w")
    if budget is not None and not (isinstance(budget, int | float) and budget > 0):
        raise WorkloadError(f"{path.name}: power_budget_w must be a positive number of watts")
    return demands, {str(g): int(n) for g, n in inv.items()}, budget
