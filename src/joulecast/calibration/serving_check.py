"""H100 serving cross-check: joulecast's decode steps against ML.ENERGY's measured vLLM serving.

ML.ENERGY v3 (``<data>/mlenergy/v3/llm.csv``, data README section 2) measured single-GPU vLLM
serving on an H100-SXM at 700 W: per configuration the steady-state average power, the output
throughput and the energy per output token. :func:`serving_rows` checks the pure forecast
(coefficients transferred from the A100, tensor and HBM energies from the H200 kernel tables, the
H100's idle table and inferred V(f)) end to end: no serving row is fitted. The Hopper
calibration on these rows, leave one model out, is :mod:`joulecast.calibration.hopper`.

What one measured step is taken to be (assumptions, written in docs/accuracy.md too):

* **batch**: the measured mean running requests (``avg_batch_size``), rounded;
* **KV context**: mean prompt length of the task (:data:`PROMPT_TOKENS`: estimates from the data
  folder's ``input_lengths.md``, not measurements) plus half the mean output length (the mean
  position of a generated token);
* **prefill mixed in**: each request's prompt is prefilled once, batched into a decode step by
  vLLM's chunked prefill (the whole prompt fits the 8,192-token chunk budget). In steady state
  ``batch / output`` requests are admitted per step, so the mean step costs one decode step
  plus ``batch / output`` times the marginal cost of a prompt: the mixed step
  (``prefill_tokens`` = prompt, :func:`joulecast.models.build.build_workload`) minus the plain
  one, in time and in energy. Spreading the prompt thinly over every step instead would wake
  most experts of a MoE model in every step;
* **execution**: CUDA graphs (no per-op host time), vLLM's flash attention, default clocks
  (the maximum, lowered by the model where the 700 W limit binds).

Rows kept: single-GPU (``num_gpus == 1``), dense or MoE transformers with bf16 weights, models
the front end builds (the hybrid Mamba models are not).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from joulecast.errors import CalibrationError, JoulecastError
from joulecast.workload.ir import Workload

GPU = "h100-sxm"
TABLE = Path("mlenergy") / "v3" / "llm.csv"
REQUIRED_COLUMNS = (
    "task",
    "model_id",
    "architecture",
    "weight_precision",
    "gpu_model",
    "num_gpus",
    "avg_batch_size",
    "avg_output_len",
    "avg_power_watts",
    "output_throughput_tokens_per_sec",
    "energy_per_token_joules",
)
# Mean prompt tokens per task (the data folder's input_lengths.md: assumed, not measured).
PROMPT_TOKENS = {"lm-arena-chat": 350, "gpqa": 185, "sourcegraph-fim": 1200}


@dataclass(frozen=True)
class ServingMeasurement:
    """One measured serving configuration.

    Attributes:
        prompts_per_step: prompts admitted per step in steady state (``batch / output``).
        step_s: measured mean step time (batch ÷ output throughput).
        power_w: measured steady-state power.
        energy_per_token_j: measured energy per output token.
    """

    task: str
    model: str
    batch: int
    context: int
    prompts_per_step: float
    step_s: float
    power_w: float
    energy_per_token_j: float


@dataclass(frozen=True)
class ServingConfig(ServingMeasurement):
    """A measured configuration and the two step workloads that forecast it: one plain decode
    step at the measured mean batch (``decode``) and the same step with one prompt prefilled in
    it (``mixed``, chunked prefill)."""

    decode: Workload
    mixed: Workload


@dataclass(frozen=True)
class ServingRow(ServingMeasurement):
    """One measured serving configuration and joulecast's step forecast."""

    pred_step_s: float
    pred_power_w: float

    @property
    def pred_energy_per_token_j(self) -> float:
        return self.pred_power_w * self.pred_step_s / self.batch

    @property
    def errors(self) -> tuple[float, float, float]:
        """Signed relative errors of step time, power, energy per token."""
        return (
            self.pred_step_s / self.step_s - 1,
            self.pred_power_w / self.power_w - 1,
            self.pred_energy_per_token_j / self.energy_per_token_j - 1,
        )


def serving_configs(data_dir: Path) -> list[ServingConfig]:
    """Every usable ML.ENERGY H100 row with its step workloads (module doc: what a step is)."""
    from joulecast.models.build import build_workload

    path = data_dir / TABLE
    if not path.is_file():
        return []
    out = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CalibrationError(f"{path.name}: missing column(s) {', '.join(missing)}")
        for line, r in enumerate(reader, start=2):
            if (
                r.get("num_gpus") != "1"
                or r.get("architecture") not in ("Dense Transformer", "MoE")
                or r.get("weight_precision") != "bfloat16"
                or r.get("gpu_model") != "H100"
                or r.get("task") not in PROMPT_TOKENS
            ):
                continue
            prompt = PROMPT_TOKENS[r["task"]]
            try:
                batch = max(1, round(float(r["avg_batch_size"])))
                out_len = float(r["avg_output_len"])
                measured = (
                    float(r["output_throughput_tokens_per_sec"]),
                    float(r["avg_power_watts"]),
                    float(r["energy_per_token_joules"]),
                )
            except ValueError:
                raise CalibrationError(
                    f"{path.name}, line {line}: a value is not a number"
                ) from None
            if out_len <= 0 or min(measured) <= 0:
                raise CalibrationError(f"{path.name}, line {line}: non-positive measurement")
            context = int(prompt + out_len / 2)
            try:
                decode = build_workload(r["model_id"], batch=batch, phase="decode", context=context)
                mixed = build_workload(
                    r["model_id"],
                    batch=batch,
                    phase="decode",
                    context=context,
                    prefill_tokens=prompt,
                )
            except JoulecastError:
                continue  # a model the front end does not know
            out.append(
                ServingConfig(
                    task=r["task"],
                    model=r["model_id"],
                    batch=batch,
                    context=context,
                    prompts_per_step=batch / out_len,
                    step_s=batch / measured[0],
                    power_w=measured[1],
                    energy_per_token_j=measured[2],
                    decode=decode,
                    mixed=mixed,
                )
            )
    return out


def forecast_row(cfg: ServingConfig, step_s: float, energy_j: float) -> ServingRow:
    """The row of ``cfg`` with a forecast step time and step energy."""
    measured = {f.name: getattr(cfg, f.name) for f in fields(ServingMeasurement)}
    return ServingRow(**measured, pred_step_s=step_s, pred_power_w=energy_j / step_s)


def serving_rows(data_dir: Path) -> list[ServingRow]:
    """Forecast every usable ML.ENERGY H100 row with the shipped coefficients (module doc)."""
    from joulecast.estimator import estimate

    out = []
    for cfg in serving_configs(data_dir):
        d = estimate(cfg.decode, GPU, cuda_graphs=True, detail=False)
        m = estimate(cfg.mixed, GPU, cuda_graphs=True, detail=False)
        a = cfg.prompts_per_step  # requests admitted (prompts prefilled) per step
        step_s = d.time_s + a * (m.time_s - d.time_s)
        energy_j = d.energy_j + a * (m.energy_j - d.energy_j)
        out.append(forecast_row(cfg, step_s, energy_j))
    return out


def summary(
    rows: list[ServingRow],
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(MAPE, bias) of step time, power and energy per token, in percent."""
    e = np.array([r.errors for r in rows]) * 100
    mape = np.abs(e).mean(axis=0)
    bias = e.mean(axis=0)
    return (
        (float(mape[0]), float(mape[1]), float(mape[2])),
        (float(bias[0]), float(bias[1]), float(bias[2])),
    )


def render_markdown(rows: list[ServingRow]) -> list[str]:
    """Markdown section of docs/accuracy.md."""
    if not rows:
        return []

    def line(label: str, sub: list[ServingRow]) -> str:
        m, b = summary(sub)
        cells = " | ".join(f"{x:.1f} ({y:+.1f})" for x, y in zip(m, b, strict=True))
        return f"| {label} | {len(sub)} | {cells} |"

    lines = [
        "",
        "## H100 serving cross-check: pure Ampere-to-Hopper transfer (ML.ENERGY v3, never fitted)",
        "",
        "Single-GPU bf16 vLLM serving (dense and MoE) on an H100-SXM; each measured "
        "configuration forecast as a decode step at the measured mean batch plus its share "
        "of prompt prefill (CUDA graphs, flash attention, default clocks; assumptions "
        "in `joulecast.calibration.serving_check`), against the measured mean step time "
        "(batch ÷ output throughput), power and energy per output token. MAPE % (mean "
        "signed error %).",
        "",
        "| rows | n | step time | power | energy per token |",
        "|---|---|---|---|---|",
        line("all", rows),
        line("batch <= 32", [r for r in rows if r.batch <= 32]),
        line("batch > 32", [r for r in rows if r.batch > 32]),
    ]
    for model in sorted({r.model for r in rows}):
        lines.append(line(model, [r for r in rows if r.model == model]))
    return lines
