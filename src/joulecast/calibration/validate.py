"""Accuracy report: every valid measured row, in-sample and leave-one-model-out, with a baseline.

Protocols:

* **in-sample**: fit on all rows of the GPU (for the A100, the 900 MHz set plus the DVFS sweep),
  predict the reported rows;
* **leave-one-model-out (LOMO)**: for each model family, fit on the other families only (in every
  set) and predict the held-out family;
* **baseline**: a three-feature regression (GEMM FLOPs ÷ peak, bytes ÷ bandwidth, kernel count)
  fitted with NNLS for time and for energy, same protocols;
* **DVFS**: A100-PCIe rows at 510–1410 MHz predicted at the requested clock with power-cap
  throttling modelled, from a fit on the 900 MHz set only, and leave-one-model-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from joulecast.calibration.data import (
    FORECAST_SETS,
    MEASUREMENT_GPUS,
    Measurement,
    calibration_rows,
    forecast_rows,
    read_measurements,
    training_rows,
)
from joulecast.calibration.fit import Calibration
from joulecast.calibration.measured_time import MeasuredTimePower, power_at_measured_time
from joulecast.calibration.predictions import (
    Prediction,
    baseline,
    leave_one_model_out,
    mape,
    predict_rows,
)
from joulecast.calibration.serving_check import ServingRow
from joulecast.calibration.serving_check import render_markdown as serving_markdown
from joulecast.coefficients.params import GpuCoefficients

GPU_SETS = (("a100", "a100-pcie-40gb"), ("a10", "a10"))


@dataclass
class GpuReport:
    """All protocols for one measurement set."""

    set_name: str
    gpu: str
    n_rows: int
    n_params: int
    in_sample: list[Prediction] = field(default_factory=list)
    lomo: list[Prediction] = field(default_factory=list)
    baseline_in: list[Prediction] = field(default_factory=list)
    baseline_lomo: list[Prediction] = field(default_factory=list)
    fp32: list[Prediction] = field(default_factory=list)
    measured_time: MeasuredTimePower | None = None


@cache
def _training_rows(data_dir: Path, set_name: str) -> tuple[Measurement, ...]:
    # Read once for all the folds of a set (as :func:`fitted`, cached by folder).
    return tuple(training_rows(data_dir, set_name))


@cache
def fitted(data_dir: Path, set_name: str, gpu: str, *, without: str | None = None) -> Calibration:
    """A calibration (GPU coefficients and host) fitted on the training rows of ``set_name``
    (minus model ``without``).

    Cached: the A100's leave-one-model-out fits serve both its report and the DVFS report.
    """
    train = [r for r in _training_rows(data_dir, set_name) if r.model != without]
    return Calibration(gpu).fit(train)


def _coefficients(cal: Calibration) -> GpuCoefficients:
    assert cal.coefficients_ is not None
    return cal.coefficients_


def gpu_report(data_dir: Path, set_name: str, gpu: str) -> GpuReport:
    """Fit and predict every valid bf16 row with a kernel list of ``set_name``.

    The fits use :func:`training_rows` (for the A100, the 900 MHz set plus the DVFS sweep); the
    leave-one-model-out fits drop the held-out model from every set.
    """
    rows = calibration_rows(data_dir, set_name)
    full_fit = fitted(data_dir, set_name, gpu)
    rep = GpuReport(set_name, gpu, len(rows), Calibration(gpu).n_parameters)
    rep.in_sample = full_fit.predict(rows)
    # fp32 rows have no kernel list: the front end builds them (fp32 GEMMs on CUDA cores), and
    # they are predicted with the bf16 fit (never used in fitting).
    fp32_rows = [
        r for r in read_measurements(data_dir, set_name) if r.valid and r.precision == "fp32"
    ]
    rep.fp32 = full_fit.predict(fp32_rows)
    fits: dict[str | None, GpuCoefficients] = {None: _coefficients(full_fit)}
    for model in sorted({r.model for r in rows}):
        held_out = fitted(data_dir, set_name, gpu, without=model)
        fits[model] = _coefficients(held_out)
        rep.lomo += held_out.predict([r for r in rows if r.model == model])
    rep.measured_time = power_at_measured_time(rows, fits)
    rep.baseline_in = baseline(rows, rows)
    rep.baseline_lomo = leave_one_model_out(rows, baseline)
    return rep


@dataclass
class DvfsReport:
    """DVFS rows predicted at their requested clocks (all valid rows, throttled included)."""

    fit_900: list[Prediction]
    lomo: list[Prediction]


def dvfs_report(data_dir: Path) -> DvfsReport:
    """Predict the DVFS set two ways.

    * ``fit_900``: coefficients fitted on the 900 MHz set only (every model): how a fit at one
      clock carries to 510–1410 MHz;
    * ``lomo``: for each model, coefficients fitted on the 900 MHz and DVFS rows of the *other*
      models (the shipped fit's protocol, held out by model).
    """
    gpu = "a100-pcie-40gb"
    test = calibration_rows(data_dir, "dvfs")
    fit_900 = Calibration(gpu).fit(calibration_rows(data_dir, "a100")).predict(test)
    lomo: list[Prediction] = []
    for model in sorted({r.model for r in test}):
        held_out = fitted(data_dir, "a100", gpu, without=model)
        lomo += held_out.predict([r for r in test if r.model == model])
    return DvfsReport(fit_900, lomo)


@dataclass
class ForecastReport:
    """Rows of a part joulecast is never fitted on, predicted with transferred coefficients."""

    set_name: str
    gpu: str
    preds: list[Prediction]


def forecast_reports(data_dir: Path) -> list[ForecastReport]:
    """Every forecast set present in the data folder (e.g. ``h100.csv``), all valid rows."""
    out = []
    for set_name in FORECAST_SETS:
        rows = forecast_rows(data_dir, set_name)
        if rows:
            gpu = MEASUREMENT_GPUS[set_name]
            out.append(ForecastReport(set_name, gpu, predict_rows(rows, None, None)))
    return out


def launch_bound(p: Prediction) -> bool:
    """Batch-1 passes with short sequences (≤ 256 tokens), where host dispatch dominates."""
    return p.row.batch == 1 and (p.row.seq or 0) <= 256 and p.row.seq is not None


def _fmt(m: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in m)


# Project targets, leave-one-model-out (MAPE %): what `validate` checks each protocol against.
E2E_TARGETS = {"time": 7.0, "power": 4.0, "energy": 8.0}
FAMILY_POWER_TARGET = 8.0
LAUNCH_BOUND_TIME_TARGET = 10.0
DVFS_TARGETS = {"time": 8.0, "power": 5.0, "energy": 8.0}
# Forecast of a part never fitted (H100-SXM prefill passes): power and energy only.
FORECAST_TARGETS = {"power": 5.0, "energy": 10.0}


def _check(value: float, target: float) -> str:
    return f"{value:.1f} (target ≤ {target:g}): {'met' if value <= target else '**missed**'}"


def targets_table(
    reports: Sequence[GpuReport],
    dvfs: DvfsReport | None,
    forecasts: Sequence[ForecastReport] = (),
) -> list[str]:
    """Markdown rows comparing the leave-one-model-out figures with the project's targets."""
    lines = ["| protocol | quantity | result |", "|---|---|---|"]
    for r in reports:
        t, w, e = mape(r.lomo)
        for name, value in (("time", t), ("power", w), ("energy", e)):
            lines.append(f"| {r.gpu} LOMO | {name} | {_check(value, E2E_TARGETS[name])} |")
        worst_model, worst = max(
            (
                (m, mape([p for p in r.lomo if p.row.model == m])[1])
                for m in {p.row.model for p in r.lomo}
            ),
            key=lambda mw: mw[1],
        )
        lines.append(
            f"| {r.gpu} LOMO | worst family power ({worst_model}) | "
            f"{_check(worst, FAMILY_POWER_TARGET)} |"
        )
        lb = mape([p for p in r.lomo if launch_bound(p)])[0]
        lines.append(
            f"| {r.gpu} LOMO | launch-bound time | {_check(lb, LAUNCH_BOUND_TIME_TARGET)} |"
        )
    if dvfs is not None:
        t, w, e = mape(dvfs.lomo)
        for name, value in (("time", t), ("power", w), ("energy", e)):
            lines.append(f"| DVFS leave model out | {name} | {_check(value, DVFS_TARGETS[name])} |")
    for f in forecasts:
        _, w, e = mape(f.preds)
        for name, value in (("power", w), ("energy", e)):
            lines.append(
                f"| {f.gpu} forecast (never fitted) | {name} | "
                f"{_check(value, FORECAST_TARGETS[name])} |"
            )
    return lines


def measured_time_markdown(reports: Sequence[GpuReport]) -> list[str]:
    """The power model alone (:mod:`joulecast.calibration.measured_time`) beside the estimate."""
    done = [r for r in reports if r.measured_time is not None]
    if not done:
        return []
    lines = [
        "",
        "### The power model alone: measured pass time (power MAPE %)",
        "",
        "The same fitted coefficients (leave-one-model-out for LOMO) priced over each row's "
        "measured pass time instead of the predicted one: the power model's own error, without "
        "the time model's (`joulecast.calibration.measured_time`).",
        "",
        "| GPU | rows | estimate LOMO | measured time, in-sample | measured time, LOMO "
        "| worst family (measured time, LOMO) |",
        "|---|---|---|---|---|---|",
    ]
    for r in done:
        m = r.measured_time
        assert m is not None
        worst = max(m.lomo_by_model, key=lambda k: m.lomo_by_model[k])
        lines.append(
            f"| {r.gpu} | {m.n_rows} | {mape(r.lomo)[1]:.1f} | {m.in_sample:.1f} | {m.lomo:.1f} | "
            f"{worst} {m.lomo_by_model[worst]:.1f} |"
        )
    return lines


def render_markdown(
    reports: Sequence[GpuReport],
    dvfs: DvfsReport | None,
    serving: Sequence[ServingRow] = (),
    forecasts: Sequence[ForecastReport] = (),
) -> str:
    """The accuracy tables as Markdown (docs/accuracy.md)."""
    lines = [
        "## Targets (leave-one-model-out)",
        "",
        *targets_table(reports, dvfs, forecasts),
        "",
        "## End-to-end accuracy (MAPE %, time | power | energy)",
        "",
        "| GPU | rows | params | joulecast in-sample | joulecast LOMO | baseline in-sample "
        "| baseline LOMO | launch-bound LOMO |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lb = [p for p in r.lomo if launch_bound(p)]
        lines.append(
            f"| {r.gpu} | {r.n_rows} | {r.n_params} | {_fmt(mape(r.in_sample))} | "
            f"{_fmt(mape(r.lomo))} | {_fmt(mape(r.baseline_in))} | {_fmt(mape(r.baseline_lomo))} "
            f"| {_fmt(mape(lb))} ({len(lb)} rows) |"
        )
    lines += measured_time_markdown(reports)
    lines += [
        "",
        "### fp32 rows (no kernel list; built by the model front end, bf16-fitted coefficients)",
        "",
        "| GPU | rows | time / power / energy |",
        "|---|---|---|",
    ]
    for r in reports:
        lines.append(f"| {r.gpu} | {len(r.fp32)} | {_fmt(mape(r.fp32))} |")
    lines += ["", "### Per model, leave-one-model-out (MAPE %, time | power | energy)", ""]
    lines += ["| GPU | model | rows | joulecast | baseline |", "|---|---|---|---|---|"]
    for r in reports:
        for model in sorted({p.row.model for p in r.lomo}):
            ours = [p for p in r.lomo if p.row.model == model]
            base = [p for p in r.baseline_lomo if p.row.model == model]
            lines.append(
                f"| {r.gpu} | {model} | {len(ours)} | {_fmt(mape(ours))} | {_fmt(mape(base))} |"
            )
    lines += ["", "### Worst rows, leave-one-model-out (signed error %)", ""]
    lines += ["| GPU | row | time | power | energy |", "|---|---|---|---|---|"]
    for r in reports:
        worst = sorted(r.lomo, key=lambda p: -max(abs(x) for x in p.errors))[:5]
        for p in worst:
            t, w, e = (100 * x for x in p.errors)
            lines.append(f"| {r.gpu} | {p.row.key} | {t:+.1f} | {w:+.1f} | {e:+.1f} |")
    if dvfs is not None:
        thr = [p for p in dvfs.fit_900 if p.row.throttled]
        thr_lomo = [p for p in dvfs.lomo if p.row.throttled]
        lines += [
            "",
            "## DVFS, A100-PCIe 510–1410 MHz (MAPE %, time | power | energy)",
            "",
            "| protocol | rows | all rows | throttled rows |",
            "|---|---|---|---|",
            f"| fit on the 900 MHz set only | {len(dvfs.fit_900)} | {_fmt(mape(dvfs.fit_900))} | "
            f"{_fmt(mape(thr))} ({len(thr)}) |",
            "| leave model out (fit on 900 MHz + DVFS rows of the other models) | "
            f"{len(dvfs.lomo)} | {_fmt(mape(dvfs.lomo))} | "
            f"{_fmt(mape(thr_lomo))} ({len(thr_lomo)}) |",
        ]
    for f in forecasts:
        lines += [
            "",
            f"## Forecast: {f.gpu} (`{f.set_name}.csv`, never used in fitting)",
            "",
            "Every valid row, estimated at its requested clock with the physics-transferred "
            "coefficients (docs/hardware.md). MAPE %, time | power | energy.",
            "",
            "| model | rows | time / power / energy | mean signed (time, power, energy) |",
            "|---|---|---|---|",
        ]
        groups = {
            m: [p for p in f.preds if p.row.model == m]
            for m in sorted({p.row.model for p in f.preds})
        }
        groups["all"] = list(f.preds)
        for label, sub in groups.items():
            bias = np.mean([p.errors for p in sub], axis=0) * 100
            signed = ", ".join(f"{b:+.1f}" for b in bias)
            lines.append(f"| {label} | {len(sub)} | {_fmt(mape(sub))} | {signed} |")
    lines += serving_markdown(list(serving))
    return "\n".join(lines) + "\n"


def plot(reports: Sequence[GpuReport], path: Path) -> None:
    """Predicted vs measured scatter (LOMO) of time, power and energy with the ±10 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, idx, name, unit in zip(
        axes, range(3), ("time", "power", "energy"), ("ms", "W", "J"), strict=True
    ):
        lo, hi = np.inf, 0.0
        for r in reports:
            meas = np.array(
                [(p.row.time_s * 1e3, p.row.power_w, p.row.energy_j)[idx] for p in r.lomo]
            )
            pred = np.array([(p.time_s * 1e3, p.power_w, p.energy_j)[idx] for p in r.lomo])
            ax.scatter(meas, pred, s=14, label=r.gpu, alpha=0.8)
            lo, hi = min(lo, meas.min(), pred.min()), max(hi, meas.max(), pred.max())
        x = np.geomspace(lo * 0.9, hi * 1.1, 50)
        ax.plot(x, x, "k-", lw=0.8)
        ax.fill_between(x, x * 0.9, x * 1.1, color="grey", alpha=0.2, label="±10 %")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        ax.set_title(f"{name}, leave-one-model-out")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
