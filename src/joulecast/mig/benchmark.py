"""Method comparison on synthetic scenarios with a known truth, under a tuning/held-out protocol.

Protocol: the online method's settings (:class:`joulecast.mig.methods.OnlineConfig`) were chosen
on :data:`~joulecast.mig.synth.TUNING_SCENARIOS` x :data:`~joulecast.mig.synth.TUNING_SEEDS`
only. The reported accuracy uses :data:`~joulecast.mig.synth.REPORT_SCENARIOS` x
:data:`~joulecast.mig.synth.REPORT_SEEDS`, which share no scenario and no seed with the tuning
set (:func:`check_protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from joulecast.errors import JoulecastError
from joulecast.mig.attribute import attribute_gpu
from joulecast.mig.methods import METHOD_NAMES
from joulecast.mig.readers import read_long_csv
from joulecast.mig.synth import (
    REPORT_SCENARIOS,
    REPORT_SEEDS,
    TUNING_SCENARIOS,
    TUNING_SEEDS,
    Scenario,
    generate,
)

__all__ = [
    "REPORT_SEEDS",
    "TUNING_SEEDS",
    "MethodScore",
    "check_protocol",
    "evaluation_set",
    "markdown_table",
    "run_benchmark",
]


@dataclass(frozen=True)
class MethodScore:
    """Error summary of one method over all scenarios and seeds of a set.

    Attributes:
        method: Method name.
        median_abs_error_pct: Median of |per-instance dynamic energy error|.
        worst_abs_error_pct: Worst |error| over all instances and runs.
        min_error_pct: Most negative signed error.
        max_error_pct: Most positive signed error.
        worst_conservation_pct: Worst |measured - components| / measured over GPUs and runs.
        n_instances: Number of (instance, run) errors behind the numbers.
        worst_case: Where the worst error happened (scenario, seed, instance, profile).
        per_scenario_worst_pct: Worst |error| per scenario.
    """

    method: str
    median_abs_error_pct: float
    worst_abs_error_pct: float
    min_error_pct: float
    max_error_pct: float
    worst_conservation_pct: float
    n_instances: int = 0
    worst_case: str = ""
    per_scenario_worst_pct: dict[str, float] = field(default_factory=dict)


def check_protocol(
    tuning: tuple[Scenario, ...] = TUNING_SCENARIOS,
    tuning_seeds: tuple[int, ...] = TUNING_SEEDS,
    report: tuple[Scenario, ...] = REPORT_SCENARIOS,
    report_seeds: tuple[int, ...] = REPORT_SEEDS,
) -> None:
    """Check that the held-out set shares no scenario and no seed with the tuning set.

    Raises:
        JoulecastError: On any overlap.
    """
    names = {s.name for s in tuning} & {s.name for s in report}
    layouts = {s.instances for s in tuning} & {s.instances for s in report}
    seeds = set(tuning_seeds) & set(report_seeds)
    if names or layouts or seeds:
        raise JoulecastError(
            "benchmark protocol broken: held-out set overlaps the tuning set "
            f"(scenarios {sorted(names)}, identical layouts {len(layouts)}, seeds {sorted(seeds)})"
        )


def evaluation_set(which: str) -> tuple[tuple[Scenario, ...], tuple[int, ...]]:
    """Scenarios and seeds of ``held-out`` (the report) or ``tuning``.

    Raises:
        JoulecastError: On another name.
    """
    if which == "held-out":
        return REPORT_SCENARIOS, REPORT_SEEDS
    if which == "tuning":
        return TUNING_SCENARIOS, TUNING_SEEDS
    raise JoulecastError(f"unknown evaluation set '{which}' (known: held-out, tuning)")


def run_benchmark(
    scenarios: tuple[Scenario, ...] = REPORT_SCENARIOS,
    seeds: tuple[int, ...] = REPORT_SEEDS,
    methods: tuple[str, ...] = METHOD_NAMES,
) -> list[MethodScore]:
    """Generate each scenario, write and re-read it as long CSV, attribute with every method.

    Args:
        scenarios: Scenarios to run (default: the held-out set).
        seeds: Seeds per scenario (default: the held-out seeds).
        methods: Methods to compare.

    Returns:
        One score per method.
    """
    check_protocol()
    errors: dict[str, list[float]] = {m: [] for m in methods}
    where: dict[str, list[str]] = {m: [] for m in methods}
    per_scenario: dict[str, dict[str, float]] = {m: {} for m in methods}
    conservation: dict[str, list[float]] = {m: [] for m in methods}
    for sc in scenarios:
        for seed in seeds:
            run = generate(sc, seed)
            truth = dict(zip(run.instance_ids, run.true_dynamic_energy_j().tolist(), strict=True))
            gpu = read_long_csv(run.to_long_csv()).gpus[0]
            for m in methods:
                r = attribute_gpu(gpu, method=m)
                for inst in r.instances:
                    t = truth[inst.gpu_instance_id]
                    err = 100.0 * (inst.dynamic_energy_j - t) / t
                    errors[m].append(err)
                    where[m].append(
                        f"{sc.name} seed {seed} instance {inst.gpu_instance_id} ({inst.profile})"
                    )
                    prev = per_scenario[m].get(sc.name, 0.0)
                    per_scenario[m][sc.name] = max(prev, abs(err))
                conservation[m].append(100.0 * abs(r.conservation_error_j) / r.energy_j)
    out = []
    for m in methods:
        e = np.array(errors[m])
        k = int(np.argmax(np.abs(e)))
        out.append(
            MethodScore(
                method=m,
                median_abs_error_pct=float(np.median(np.abs(e))),
                worst_abs_error_pct=float(np.max(np.abs(e))),
                min_error_pct=float(e.min()),
                max_error_pct=float(e.max()),
                worst_conservation_pct=float(max(conservation[m])),
                n_instances=int(e.size),
                worst_case=where[m][k],
                per_scenario_worst_pct=per_scenario[m],
            )
        )
    return out


def markdown_table(scores: list[MethodScore]) -> str:
    """Render scores as a Markdown table (one row per method)."""
    lines = [
        "| method | median abs error % | worst abs error % | signed range % "
        "| worst conservation gap % |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.method} | {s.median_abs_error_pct:.2f} | {s.worst_abs_error_pct:.2f} | "
            f"{s.min_error_pct:+.1f} … {s.max_error_pct:+.1f} | {s.worst_conservation_pct:.2g} |"
        )
    return "\n".join(lines)
