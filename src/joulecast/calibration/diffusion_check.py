"""Diffusion check: energy per image/video and batch latency against ML.ENERGY's measurements.

Rows: every configuration of ``mlenergy/v3/diffusion.csv`` (H100-SXM, xDiT 0.4.5, 1-8 GPUs,
sequence parallel), and the ``mlenergy/v2/diffusion`` rows of pipelines joulecast builds
(SD3-medium on H100 and A100-SXM4-40GB, diffusers, one GPU; the v2 UNet pipelines are not
built and are counted as skipped).

Three forecasts of each row:

* **pure**: the kernel models only (:class:`~joulecast.diffusion.corrections.Corrections`
  at identity), nothing fitted on diffusion rows;
* **in-sample**: the corrections fitted on every row;
* **leave-one-model-out (LOMO)**: the corrections fitted on the other models' rows only.

The corrections (:mod:`joulecast.diffusion.corrections`) are fitted by least squares on the
log ratios of batch latency and energy per item, both weighted alike, soft-L1 loss.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import msgspec
import numpy as np
from scipy.optimize import least_squares

from joulecast.diffusion.corrections import IDENTITY, Corrections
from joulecast.diffusion.pipeline import StagePasses, stage_passes
from joulecast.diffusion.registry import load_diffusion_config
from joulecast.diffusion.shape import resolve_shape
from joulecast.errors import CalibrationError, JoulecastError
from joulecast.hardware.spec import load_gpu

V3_TABLE = Path("mlenergy") / "v3" / "diffusion.csv"
V2_FOLDER = Path("mlenergy") / "v2" / "diffusion"
_V2_GPUS = {"NVIDIA H100 80GB HBM3": "h100-sxm", "NVIDIA A100-SXM4-40GB": "a100-sxm4-40gb"}
_V2_RESOLUTION = 1024  # SD3-medium in v2 models.json: 1024x1024
#: The fitted corrections, their start values, bounds and scales.
FITTED = ("attention_factor", "collective_host_s", "vae_factor")
_START = np.array([1.5, 1e-4, 2.0])
_BOUNDS = (np.array([1.0, 0.0, 0.5]), np.array([4.0, 2e-3, 30.0]))
_SCALE = np.array([1.0, 1e-4, 1.0])


@dataclass(frozen=True)
class DiffusionRow:
    """One measured configuration.

    Attributes:
        source: ``v3`` or ``v2``.
        energy_per_item_j: measured energy per image or video (all GPUs).
    """

    source: str
    task: str
    model: str
    gpu: str
    batch: int
    height: int
    width: int
    frames: int | None
    steps: int
    num_gpus: int
    ulysses: int
    ring: int
    latency_s: float
    energy_per_item_j: float

    @property
    def key(self) -> str:
        """Model and task, the unit of leave-one-out and of the report."""
        return f"{self.model} ({self.task})"


@dataclass(frozen=True)
class Prediction:
    """A row with its forecast latency and energy per item."""

    row: DiffusionRow
    latency_s: float
    energy_per_item_j: float

    @property
    def latency_error(self) -> float:
        return self.latency_s / self.row.latency_s - 1.0

    @property
    def energy_error(self) -> float:
        return self.energy_per_item_j / self.row.energy_per_item_j - 1.0


def _int(value: str) -> int | None:
    return int(float(value)) if value.strip() else None


def load_rows(data: Path) -> tuple[list[DiffusionRow], list[str]]:
    """Measured rows of the v3 table and of the v2 folder; and what was skipped, with why."""
    path = data / V3_TABLE
    if not path.is_file():
        raise CalibrationError(f"diffusion measurements not found: {path}")
    rows: list[DiffusionRow] = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            video = r["task"] == "text-to-video"
            rows.append(
                DiffusionRow(
                    source="v3",
                    task=r["task"],
                    model=r["model_id"],
                    gpu="h100-sxm",
                    batch=int(r["batch_size"]),
                    height=int(r["video_height" if video else "image_height"]),
                    width=int(r["video_width" if video else "image_width"]),
                    frames=_int(r["num_frames"]) if video else None,
                    steps=int(r["inference_steps"]),
                    num_gpus=int(r["num_gpus"]),
                    ulysses=int(r["ulysses_degree"]),
                    ring=int(r["ring_degree"]),
                    latency_s=float(r["batch_latency_s"]),
                    energy_per_item_j=float(
                        r["energy_per_video_joules" if video else "energy_per_image_joules"]
                    ),
                )
            )
    skipped: list[str] = []
    for file in sorted((data / V2_FOLDER).glob("text-to-image/*/*/*/*.json")):
        doc = json.loads(file.read_text())
        model, gpu = str(doc["Model"]), _V2_GPUS.get(str(doc["GPU"]))
        try:
            load_diffusion_config(model)
        except JoulecastError:
            skipped.append(f"v2 {model} (UNet pipeline, not built)")
            continue
        if gpu is None:
            skipped.append(f"v2 {model} on {doc['GPU']}: GPU not shipped")
            continue
        rows.append(
            DiffusionRow(
                source="v2",
                task="text-to-image",
                model=model,
                gpu=gpu,
                batch=int(doc["Batch size"]),
                height=_V2_RESOLUTION,
                width=_V2_RESOLUTION,
                frames=None,
                steps=int(doc["Denoising steps"]),
                num_gpus=1,
                ulysses=1,
                ring=1,
                latency_s=float(doc["Batch latency (s)"]),
                energy_per_item_j=float(doc["Energy/image (J)"]),
            )
        )
    return rows, sorted(set(skipped))


def row_passes(row: DiffusionRow) -> tuple[StagePasses, ...]:
    """The (cached) stage passes of a row's forecast."""
    cfg = load_diffusion_config(row.model)
    shape = resolve_shape(
        cfg,
        batch=row.batch,
        height=row.height,
        width=row.width,
        frames=row.frames,
        steps=row.steps,
        num_gpus=row.num_gpus,
        ulysses=row.ulysses,
        ring=row.ring,
    )
    return stage_passes(cfg, shape, load_gpu(row.gpu))


def predict(row: DiffusionRow, corr: Corrections, passes: Sequence[StagePasses]) -> Prediction:
    """The row's forecast under ``corr``."""
    parts = [p.estimate(corr) for p in passes]
    time_s = sum(p.time_s for p in parts)
    energy = sum(p.energy_j for p in parts)
    return Prediction(row, time_s, energy / row.batch)


def fit_corrections(
    rows: Sequence[DiffusionRow], passes: Sequence[Sequence[StagePasses]]
) -> Corrections:
    """Least-squares corrections over ``rows`` (log latency and log energy ratios)."""

    def residuals(x: np.ndarray) -> np.ndarray:
        corr = _corrections(x)
        out = []
        for row, p in zip(rows, passes, strict=True):
            pred = predict(row, corr, p)
            out.append(math.log(pred.latency_s / row.latency_s))
            out.append(math.log(pred.energy_per_item_j / row.energy_per_item_j))
        return np.array(out)

    fit = least_squares(
        residuals, x0=_START, bounds=_BOUNDS, loss="soft_l1", f_scale=0.1, x_scale=_SCALE
    )
    return _corrections(fit.x, f"fitted on {len(rows)} rows by joulecast validate --diffusion")


def _corrections(x: np.ndarray, source: str = "fit in progress") -> Corrections:
    values = dict(zip(FITTED, (float(v) for v in x), strict=True))
    return msgspec.structs.replace(IDENTITY, **values, source=source)


@dataclass(frozen=True)
class DiffusionReport:
    """Forecasts of every row: pure, in-sample and leave-one-model-out."""

    pure: tuple[Prediction, ...]
    in_sample: tuple[Prediction, ...]
    lomo: tuple[Prediction, ...]
    fitted: Corrections
    lomo_fits: dict[str, Corrections]
    skipped: tuple[str, ...]


def diffusion_report(
    data: Path, *, progress: Callable[[str], None] | None = None
) -> DiffusionReport:
    """Forecast every row three ways (see the module docstring)."""
    rows, skipped = load_rows(data)
    passes = [row_passes(r) for r in rows]
    pure = tuple(predict(r, IDENTITY, p) for r, p in zip(rows, passes, strict=True))
    fitted = fit_corrections(rows, passes)
    in_sample = tuple(predict(r, fitted, p) for r, p in zip(rows, passes, strict=True))
    lomo: dict[int, Prediction] = {}
    fits: dict[str, Corrections] = {}
    for model in sorted({r.model for r in rows}):
        if progress is not None:
            progress(model)
        train = [i for i, r in enumerate(rows) if r.model != model]
        corr = fit_corrections([rows[i] for i in train], [passes[i] for i in train])
        fits[model] = corr
        for i, r in enumerate(rows):
            if r.model == model:
                lomo[i] = predict(r, corr, passes[i])
    return DiffusionReport(
        pure, in_sample, tuple(lomo[i] for i in range(len(rows))), fitted, fits, tuple(skipped)
    )


def _stats(preds: Iterable[Prediction]) -> tuple[int, float, float, float, float]:
    """rows, energy MAPE %, energy bias %, latency MAPE %, latency bias %."""
    p = list(preds)
    e = np.array([x.energy_error for x in p])
    t = np.array([x.latency_error for x in p])
    return (
        len(p),
        100 * float(np.abs(e).mean()),
        100 * float(e.mean()),
        100 * float(np.abs(t).mean()),
        100 * float(t.mean()),
    )


def _group(p: Prediction) -> tuple[str, str, str]:
    return (p.row.key, p.row.source, p.row.gpu)


def _in_group(key: tuple[str, str, str], p: Prediction) -> bool:
    return _group(p) == key


def render_markdown(report: DiffusionReport) -> str:
    """The report as Markdown tables: per model and task, then per subset."""
    lines = [
        "## Diffusion: energy per image/video and batch latency (ML.ENERGY)",
        "",
        "MAPE and signed bias (+: joulecast too high) of energy per image or video and of batch",
        "latency. *pure*: the kernel models alone, nothing fitted on diffusion rows; *in-sample*:",
        "corrections fitted on every row; *LOMO*: fitted without the predicted model's rows.",
        f"Corrections fitted on all rows: attention x{report.fitted.attention_factor:.3f} "
        f"(Hopper), {report.fitted.collective_host_s * 1e6:.0f} us host time per collective, "
        f"VAE x{report.fitted.vae_factor:.2f}.",
        "",
        "| model (task) | source | rows | pure E | pure t | in-sample E | in-sample t "
        "| LOMO E | LOMO t | LOMO E bias | LOMO t bias |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row_line(label: str, source: str, sel: Callable[[Prediction], bool]) -> str:
        n, pe, _, pt, _ = _stats(x for x in report.pure if sel(x))
        _, ie, _, it, _ = _stats(x for x in report.in_sample if sel(x))
        _, le, lbe, lt, lbt = _stats(x for x in report.lomo if sel(x))
        return (
            f"| {label} | {source} | {n} | {pe:.1f} | {pt:.1f} | {ie:.1f} | {it:.1f} | "
            f"{le:.1f} | {lt:.1f} | {lbe:+.1f} | {lbt:+.1f} |"
        )

    keys = sorted({_group(p) for p in report.pure})
    for key in keys:
        label = f"{key[0]} {key[2]}" if key[1] == "v2" else key[0]
        lines.append(row_line(label, key[1], partial(_in_group, key)))
    subsets: tuple[tuple[str, Callable[[Prediction], bool]], ...] = (
        ("all v3 rows (H100)", lambda x: x.row.source == "v3"),
        ("v3 images", lambda x: x.row.source == "v3" and x.row.task == "text-to-image"),
        ("v3 videos", lambda x: x.row.source == "v3" and x.row.task == "text-to-video"),
        ("v3 one GPU", lambda x: x.row.source == "v3" and x.row.num_gpus == 1),
        ("v3 2-8 GPUs", lambda x: x.row.source == "v3" and x.row.num_gpus > 1),
        ("v2 rows", lambda x: x.row.source == "v2"),
    )
    for label, sel in subsets:
        if any(sel(x) for x in report.pure):
            lines.append(row_line(f"**{label}**", "", sel))
    if report.skipped:
        lines += ["", "Skipped: " + "; ".join(report.skipped) + "."]
    return "\n".join(lines) + "\n"
