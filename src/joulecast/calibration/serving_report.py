"""`joulecast serve` against every ML.ENERGY v3 LLM row: coverage, J/token, ITL, power.

Each row of ``<data>/mlenergy/v3/llm.csv`` (H100-SXM, 1-8 GPUs, any parallelism) becomes one
``serve`` request as a user would make it: the model, ``max_num_seqs`` as the batch, the row's
GPU count and parallelism, the task's assumed mean prompt length (the data folder's
``input_lengths.md``: lm-arena-chat 350, gpqa 185, sourcegraph-fim 1,200 tokens) and the row's
mean output length, the checkpoint's precision. Nothing is fitted on these rows: the figures are
a forecast. A row joulecast cannot serve (an architecture it does not build) counts against
coverage, with its reason.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    fields = {
        "task": task,
        "model": r["model_id"],
        "num_gpus": int(r["num_gpus"]),
        "tp": int(r["tensor_parallel"]),
        "ep": int(r["expert_parallel"]),
        "dp": int(r["data_parallel"]),
        "batch": int(r["max_num_seqs"]),
        "output_tokens": round(float(r["avg_output_len"])),
        "energy_per_token_j": float(r["energy_per_token_joules"]),
        "itl_ms": float(r["median_itl_ms"]),
        "power_w": float(r["avg_power_watts"]),
        "throughput_tok_s": float(r["output_throughput_tokens_per_sec"]),
    }
    try:
        forecast = serve(
            r["model_id"],
            GPU,
            batch=int(fields["batch"]),
            input_tokens=PROMPT_TOKENS.get(task, 350),
            output_tokens=max(1, int(fields["output_tokens"])),
            num_gpus=int(fields["num_gpus"]),
            tp=int(fields["tp"]),
            ep=int(fields["ep"]) if int(fields["ep"]) > 1 else None,
            dp=int(fields["dp"]),
            precision=_PRECISION.get(r["weight_precision"], "auto"),
        )
    except JoulecastError as exc:
        return ServingPoint(**fields, forecast=None, reason=str(exc))  # type: ignore[arg-type]
    return ServingPoint(**fields, forecast=forecast)  # type: ignore[arg-type]


def _mape_bias(points: Sequence[ServingPoint], key: str) -> tuple[float, float]:
    e = np.array([p.errors[key] for p in points])
    return float(np.mean(np.abs(e)) * 100), float(np.mean(e) * 100)


def render_markdown(points: Sequence[ServingPoint]) -> list[str]:
    """The serving section of the accuracy report."""
    covered = [p for p in points if p.forecast is not None]
    keys = ("J/token", "ITL", "power", "throughput")
    lines = [
        "## Serving: every ML.ENERGY v3 LLM row (H100-SXM, 1-8 GPUs; forecast, nothing fitted)",
        "",
        f"Coverage: {len(covered)} of {len(points)} rows "
        f"({100 * len(covered) / max(1, len(points)):.0f} %). Cells: MAPE % (signed bias %).",
        "",
        "| group | rows | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]

    def row(label: str, sub: Sequence[ServingPoint]) -> str:
        cells = []
        for k in keys:
            m, b = _mape_bias(sub, k)
            cells.append(f"{m:.1f} ({b:+.1f})")
        return f"| {label} | {len(sub)} | " + " | ".join(cells) + " |"

    if covered:
        lines.append(row("all", covered))
        by_layout: dict[str, list[ServingPoint]] = defaultdict(list)
        by_model: dict[str, list[ServingPoint]] = defaultdict(list)
        for p in covered:
            by_layout[f"{p.num_gpus} GPU, tp {p.tp}, ep {p.ep}"].append(p)
            by_model[p.model].append(p)
        for label, sub in sorted(by_layout.items()):
            lines.append(row(label, sub))
        for label, sub in sorted(by_model.items()):
            lines.append(row(label, sub))
    missing: dict[str, str] = {}
    for p in points:
        if p.forecast is None:
            missing.setdefault(p.model, p.reason)
    if missing:
        lines += ["", "Rows not covered:", ""]
        lines += [f"* {model}: {reason}" for model, reason in sorted(missing.items())]
    return [*lines, ""]
