"""`joulecast serve` against every ML.ENERGY v3 LLM row: coverage, J/token, ITL, power.

Each row of ``<data>/mlenergy/v3/llm.csv`` (H100-SXM, 1-8 GPUs, any parallelism) becomes one
``serve`` request as a user would make it: the model, ``max_num_seqs`` as the batch, the row's
GPU count and parallelism, the task's assumed mean prompt length (the data folder's
``input_lengths.md``: lm-arena-chat 350, gpqa 185, sourcegraph-fim 1,200 tokens) and the row's
mean output length, the checkpoint's precision. Nothing of the GPU model is fitted on these rows:
a forecast of the GPU side; the serving engine's CPU cost per step is fitted on them
(:mod:`joulecast.calibration.serving_fit`). A row joulecast cannot serve (an architecture it
does not build) counts against coverage, with its reason.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from joulecast.coefficients.host import Host, default_serving_host_id, load_host
from joulecast.errors import CalibrationError, JoulecastError
from joulecast.serving import ServeResult, serve

TABLE = Path("mlenergy") / "v3" / "llm.csv"
GPU = "h100-sxm"
PROMPT_TOKENS = {"lm-arena-chat": 350, "gpqa": 185, "sourcegraph-fim": 1200}
_PRECISION = {"bfloat16": "bf16", "fp8": "fp8", "mxfp4": "mxfp4"}


@dataclass(frozen=True)
class ServingPoint:
    """One measured configuration and joulecast's forecast of it (``None``: not covered)."""

    task: str
    model: str
    num_gpus: int
    tp: int
    ep: int
    dp: int
    batch: int
    output_tokens: int
    energy_per_token_j: float
    itl_ms: float
    power_w: float
    throughput_tok_s: float
    forecast: ServeResult | None
    reason: str = ""

    @property
    def errors(self) -> dict[str, float]:
        """Signed relative errors (forecast / measured - 1) of J/token, ITL, power, throughput."""
        f = self.forecast
        assert f is not None
        return {
            "J/token": f.energy_per_token_j / self.energy_per_token_j - 1,
            "ITL": f.itl_ms / self.itl_ms - 1,
            "power": f.avg_power_w / self.power_w - 1,
            "throughput": f.output_throughput_tok_s / self.throughput_tok_s - 1,
        }


def _gpu_only_host() -> Host:
    """The serving host with no CPU cost: the rows' GPU side alone."""
    host = load_host(default_serving_host_id())
    return msgspec.structs.replace(host, serving_step_s=0.0, serving_per_sequence_s=0.0)


def serving_points(data_dir: Path) -> list[ServingPoint]:
    """Every row of the v3 LLM table with its forecast.

    Raises:
        CalibrationError: the table is missing or malformed.
    """
    path = data_dir / TABLE
    if not path.is_file():
        raise CalibrationError(f"serving table not found: {path}")
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            try:
                point = _point(r)
            except (KeyError, ValueError) as exc:
                raise CalibrationError(f"{path.name}, line {line}: {exc}") from None
            out.append(point)
    return out


def _point(r: dict[str, str]) -> ServingPoint:
    task = r["task"]
    num_gpus, tp = int(r["num_gpus"]), int(r["tensor_parallel"])
    ep, dp = int(r["expert_parallel"]), int(r["data_parallel"])
    batch, output = int(r["max_num_seqs"]), max(1, round(float(r["avg_output_len"])))

    def point(forecast: ServeResult | None, reason: str = "") -> ServingPoint:
        return ServingPoint(
            task=task,
            model=r["model_id"],
            num_gpus=num_gpus,
            tp=tp,
            ep=ep,
            dp=dp,
            batch=batch,
            output_tokens=output,
            energy_per_token_j=float(r["energy_per_token_joules"]),
            itl_ms=float(r["median_itl_ms"]),
            power_w=float(r["avg_power_watts"]),
            throughput_tok_s=float(r["output_throughput_tokens_per_sec"]),
            forecast=forecast,
            reason=reason,
        )

    try:
        forecast = serve(
            r["model_id"],
            GPU,
            host=_gpu_only_host(),
            batch=batch,
            input_tokens=PROMPT_TOKENS.get(task, 350),
            output_tokens=output,
            num_gpus=num_gpus,
            tp=tp,
            ep=ep if ep > 1 else None,
            dp=dp,
            precision=_PRECISION.get(r["weight_precision"], "auto"),
        )
    except JoulecastError as exc:
        return point(None, str(exc))
    return point(forecast)


Prediction = tuple[float, float]  # (ITL in ms, J/token)


def _errors(p: ServingPoint, pred: Prediction) -> dict[str, float]:
    itl_ms, jpt = pred
    f = p.forecast
    assert f is not None
    thr = f.running_batch / (itl_ms / 1e3)
    return {
        "J/token": jpt / p.energy_per_token_j - 1,
        "ITL": itl_ms / p.itl_ms - 1,
        "power": jpt * thr / p.power_w - 1,
        "throughput": thr / p.throughput_tok_s - 1,
    }


def render_markdown(
    points: Sequence[ServingPoint], variants: dict[str, Sequence[Prediction]]
) -> list[str]:
    """The serving section of the accuracy report: one table per prediction variant (each a
    prediction per covered point, in order)."""
    covered = [p for p in points if p.forecast is not None]
    keys = ("J/token", "ITL", "power", "throughput")
    lines = [
        "## Serving: every ML.ENERGY v3 LLM row (H100-SXM, 1-8 GPUs)",
        "",
        f"Coverage: {len(covered)} of {len(points)} rows "
        f"({100 * len(covered) / max(1, len(points)):.0f} %). Cells: MAPE % (signed bias %). "
        "The GPU side is a forecast (nothing fitted on these rows); the serving engine's CPU "
        "cost per step is fitted on them: in-sample, and leave-one-model-out.",
        "",
    ]
    for title, preds in variants.items():
        errs = [_errors(p, pr) for p, pr in zip(covered, preds, strict=True)]
        lines += [f"### {title}", "", "| group | rows | " + " | ".join(keys) + " |"]
        lines.append("|---|---|" + "---|" * len(keys))
        groups: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(covered):
            groups["all"].append(i)
            groups[f"{p.num_gpus} GPU, tp {p.tp}, ep {p.ep}"].append(i)
            groups[p.model].append(i)
        for label, idx in groups.items():
            cells = []
            for k in keys:
                e = np.array([errs[i][k] for i in idx])
                cells.append(f"{np.mean(np.abs(e)) * 100:.1f} ({np.mean(e) * 100:+.1f})")
            lines.append(f"| {label} | {len(idx)} | " + " | ".join(cells) + " |")
        lines.append("")
    missing: dict[str, str] = {}
    for p in points:
        if p.forecast is None:
            missing.setdefault(p.model, p.reason.split(" (known:")[0])
    if missing:
        lines += ["Rows not covered:", ""]
        lines += [f"* {model}: {reason}" for model, reason in sorted(missing.items())]
    return [*lines, ""]


def decision_regret(
    points: Sequence[ServingPoint], itl_quantile: float | None = None
) -> list[tuple[str, float]]:
    """For each model and task with several measured configurations: how much more energy per
    token the configuration joulecast ranks least-energy measures than the measured best
    (``0.0``: it picked the best). With ``itl_quantile``, an ITL limit at that quantile of the
    group's measured ITLs: joulecast picks among the configurations it forecasts within the
    limit, the best is the least measured energy among those measured within it."""
    groups: dict[tuple[str, str], list[ServingPoint]] = defaultdict(list)
    for p in points:
        if p.forecast is not None:
            groups[(p.model, p.task)].append(p)
    out = []
    for (model, task), sub in sorted(groups.items()):
        if len(sub) < 2:
            continue
        allowed, truly = sub, sub
        if itl_quantile is not None:
            limit = float(np.quantile([p.itl_ms for p in sub], itl_quantile))
            allowed = [p for p in sub if p.forecast and p.forecast.itl_ms <= limit] or sub
            truly = [p for p in sub if p.itl_ms <= limit]
        pick = min(allowed, key=lambda p: p.forecast.energy_per_token_j if p.forecast else np.inf)
        best = min(p.energy_per_token_j for p in truly)
        if pick not in truly:  # the pick misses the limit when measured: a wrong decision
            out.append((f"{model} / {task}", float("inf")))
            continue
        out.append((f"{model} / {task}", pick.energy_per_token_j / best - 1))
    return out


def serving_section(data_dir: Path) -> list[str]:
    """Forecast every row, fit the CPU cost (in-sample and leave-one-model-out), render."""
    from joulecast.calibration import serving_fit

    points = serving_points(data_dir)
    covered = [p for p in points if p.forecast is not None]
    fit = serving_fit.fit_cpu(covered)
    zero = serving_fit.CpuFit(0.0, 0.0, 0)
    decisions = ["### Decisions", ""]
    for label, q in (("no latency limit", None), ("ITL limit at the group's median", 0.5)):
        regret = decision_regret(points, q)
        within = sum(1 for _, r in regret if r <= 0.10)
        missed = sum(1 for _, r in regret if r == float("inf"))
        finite = [r for _, r in regret if r != float("inf")]
        decisions.append(
            f"* {label}: the measured configuration joulecast ranks least-energy measures within "
            f"10 % of the measured best in {within} of {len(regret)} model/task groups; "
            f"{missed} picks miss the limit when measured; mean excess of the others "
            f"{100 * float(np.mean(finite or [0.0])):.1f} %."
        )
    decisions.append("")
    return decisions + render_markdown(
        points,
        {
            "GPU only (no CPU cost)": serving_fit.predict(covered, zero),
            f"CPU fitted in-sample ({fit.step_s * 1e3:.2f} ms + {fit.per_sequence_s * 1e6:.1f} "
            "us per sequence)": serving_fit.predict(covered, fit),
            "CPU fitted leave-one-model-out": serving_fit.leave_one_model_out(covered),
        },
    )
