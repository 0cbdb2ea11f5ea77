"""Reading the reference measurements (EnergAIzer end-to-end rows) and matching kernel lists."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from joulecast.errors import CalibrationError
from joulecast.workload.energaizer import load_energaizer
from joulecast.workload.ir import Workload

# Measurement sets and the GPU each was taken on.
MEASUREMENT_GPUS = {
    "a100": "a100-pcie-40gb",
    "a10": "a10",
    "dvfs": "a100-pcie-40gb",
    "h100": "h100-sxm",
}
# Sets of parts joulecast is never fitted on: when present, ``validate`` reports them as forecasts.
FORECAST_SETS = ("h100",)
# A run whose window is shorter than this crashed (see the data README): drop it.
MIN_WINDOW_S = 5.0
# A measured mean clock this far below the requested one means power-cap throttling (clocks are
# locked otherwise; the measured mean then sits within a few MHz of the request).
THROTTLE_MARGIN_MHZ = 45.0

_NAME = re.compile(
    r"^(?P<model>[a-z0-9]+model|resnet101)_(?P<config>[^_]*)_p(?P<prec>[a-z0-9]+)_b(?P<batch>\d+)"
    r"(?:_s(?P<seq>\d+)_mode(?P<mode>[a-z]+))?(?P<eager>_attneager)?_freq(?P<freq>\d+)"
    r"_iter(?P<iter>\d+)\.csv$"
)
_FAMILY = {
    "bertmodel": "bert",
    "gpt2model": "gpt2",
    "optmodel": "opt",
    "qwen2model": "qwen2",
    "vitmodel": "vit",
    "mobilevitmodel": "mobilevit",
    "resnet101": "resnet101",
}


@dataclass(frozen=True)
class Measurement:
    """One measured configuration: per-pass time and energy at a locked clock."""

    set_name: str
    gpu: str
    workload: str
    model: str
    precision: str
    batch: int
    seq: int | None
    eager_tag: bool
    requested_clock_mhz: float
    measured_clock_mhz: float
    time_s: float
    energy_j: float
    iterations: int
    kernel_list: Path | None

    @property
    def power_w(self) -> float:
        return self.energy_j / self.time_s

    @property
    def throttled(self) -> bool:
        """Whether the GPU ran well below the requested clock (power-cap throttling)."""
        return self.measured_clock_mhz < self.requested_clock_mhz - THROTTLE_MARGIN_MHZ

    @property
    def fit_clock_mhz(self) -> float:
        """The clock the pass actually ran at: the measured one when throttled."""
        return self.measured_clock_mhz if self.throttled else self.requested_clock_mhz

    @property
    def window_s(self) -> float:
        return self.time_s * self.iterations

    @property
    def valid(self) -> bool:
        return self.window_s >= MIN_WINDOW_S

    @property
    def key(self) -> str:
        seq = f" s{self.seq}" if self.seq else ""
        tag = " eager" if self.eager_tag else ""
        return f"{self.model} {self.precision} b{self.batch}{seq}{tag}"

    def load_workload(self) -> Workload:
        """The pass as the model front end builds it: every op eager PyTorch launches.

        The measured runs include ops the EnergAIzer kernel lists omit (embeddings, copies, the
        RMSNorm reduction, batch norms), so the full graph is what the measurement saw.
        """
        return _build(MODEL_IDS[self.model], self.batch, self.seq, self.precision)

    def load_kernel_list(self) -> Workload:
        """The EnergAIzer kernel list of this run (as traced, with its omissions)."""
        if self.kernel_list is None:
            raise CalibrationError(f"{self.workload}: no kernel list")
        return _load(self.kernel_list)


# Measurement model family -> model id of the front end.
MODEL_IDS = {
    "bert": "bert-large-uncased",
    "gpt2": "gpt2",
    "opt": "facebook/opt-1.3b",
    "qwen2": "Qwen/Qwen2-1.5B",
    "vit": "google/vit-large-patch16-224",
    "mobilevit": "apple/mobilevit-small",
    "resnet101": "resnet101",
}


@cache
def _build(model_id: str, batch: int, seq: int | None, precision: str) -> Workload:
    from joulecast.models.build import build_workload

    # The measured runs are the base HF models (no LM head) with eager attention.
    return build_workload(
        model_id, batch=batch, seq=seq, precision=precision, attention="eager", lm_head=False
    )


@cache
def _load(path: Path) -> Workload:
    return load_energaizer(path)


def _kernel_list(data_dir: Path, set_name: str, stem: str) -> Path | None:
    folders = ["dvfs", "all"] if set_name == "dvfs" else ["all"]
    base = re.sub(r"_iter\d+\.csv$", "", stem).replace("_attneager", "")
    no_freq = re.sub(r"_freq\d+$", "", base)
    for folder in folders:
        for name in (base, no_freq):
            p = data_dir / "energaizer" / "workloads" / folder / f"{name}.json"
            if p.is_file():
                return p
    return None


def read_measurements(data_dir: Path, set_name: str) -> list[Measurement]:
    """All rows of ``energaizer/measurements/<set_name>.csv`` (valid or not)."""
    path = data_dir / "energaizer" / "measurements" / f"{set_name}.csv"
    if not path.is_file():
        raise CalibrationError(f"measurement file not found: {path.name} in {path.parent}")
    rows: list[Measurement] = []
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            name = rec["workload"]
            m = _NAME.match(name)
            if m is None:
                raise CalibrationError(f"{path.name}: cannot parse workload name '{name}'")
            rows.append(
                Measurement(
                    set_name=set_name,
                    gpu=MEASUREMENT_GPUS[set_name],
                    workload=name,
                    model=_FAMILY[m["model"]],
                    precision=m["prec"],
                    batch=int(m["batch"]),
                    seq=int(m["seq"]) if m["seq"] else None,
                    eager_tag=bool(m["eager"]),
                    requested_clock_mhz=float(m["freq"]),
                    measured_clock_mhz=float(rec["avg_freq"]),
                    time_s=float(rec["time"]) / 1e3,
                    energy_j=float(rec["energy"]),
                    iterations=int(m["iter"]),
                    kernel_list=_kernel_list(data_dir, set_name, name),
                )
            )
    return rows


# Extra measurement sets taken on the same GPU that join its fit: the A100 DVFS sweep spans
# 510–1410 MHz, which separates clock-scaled time and energy from clock-independent ones.
EXTRA_TRAINING_SETS = {"a100": ("dvfs",)}


def training_rows(data_dir: Path, set_name: str) -> list[Measurement]:
    """Rows a GPU is fitted on: its main set plus the extra sets measured on the same GPU."""
    rows = calibration_rows(data_dir, set_name)
    for extra in EXTRA_TRAINING_SETS.get(set_name, ()):
        rows += calibration_rows(data_dir, extra)
    return rows


def forecast_rows(data_dir: Path, set_name: str) -> list[Measurement]:
    """Valid rows of a forecast set (no kernel list needed: the front end builds every pass);
    empty when the set's file is absent."""
    if not (data_dir / "energaizer" / "measurements" / f"{set_name}.csv").is_file():
        return []
    return [r for r in read_measurements(data_dir, set_name) if r.valid]


def calibration_rows(data_dir: Path, set_name: str, precision: str = "bf16") -> list[Measurement]:
    """Valid rows of ``set_name`` in ``precision`` that have a kernel list."""
    return [
        r
        for r in read_measurements(data_dir, set_name)
        if r.valid and r.precision == precision and r.kernel_list is not None
    ]
