"""Measured passes as rows of the EnergAIzer measurement file the calibration reads.

``joulecast measure --model ... --save FILE.csv`` appends one row per measured pass in the
format of ``energaizer/measurements/*.csv`` (data README, section 1, read by
:func:`joulecast.calibration.data.read_measurements`): ``workload,energy,time,avg_freq,temp``,
energy in J and time in ms per pass, the mean SM clock in MHz and temperature in °C, the run
encoded in the workload name
``<family>model_<config>_p<prec>_b<B>_s<S>_modeprefill[_attneager]_freq<f>_iter<N>.csv``.
After those five columns come the provenance columns (:data:`PROVENANCE_COLUMNS`), which the
reader ignores. Appending to a file keeps that file's header.

The format has no KV-context field, so only prefill passes can be saved.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path

from joulecast.measure.meter import MeasureError
from joulecast.measure.model_run import ModelMeasurement
from joulecast.models.registry import ModelConfig, load_model_config

MEASUREMENT_COLUMNS = ("workload", "energy", "time", "avg_freq", "temp")
PROVENANCE_COLUMNS = (
    "model_id",
    "gpu",
    "gpu_name",
    "sm_clock_locked",
    "power_limit_w",
    "method",
    "window_s",
    "driver",
    "cuda",
    "torch",
    "joulecast",
    "date",
)

# (pattern in the lower-cased NVML name, joulecast GPU id), first match wins.
_GPU_NAMES = (
    (r"h200", "h200"),
    (r"h100.*pcie", "h100-pcie"),
    (r"h100", "h100-sxm"),
    (r"a100.*pcie", "a100-pcie-40gb"),
    (r"a100.*sxm.*40", "a100-sxm4-40gb"),
    (r"a100", "a100-sxm4-80gb"),
    (r"\ba10\b", "a10"),
    (r"l40s", "l40s"),
    (r"b200", "b200"),
)


def guess_gpu_id(nvml_name: str) -> str | None:
    """The joulecast GPU id of an NVML product name (``NVIDIA H100 80GB HBM3`` -> ``h100-sxm``),
    or ``None`` when no shipped spec matches."""
    name = nvml_name.lower()
    return next((gpu for pattern, gpu in _GPU_NAMES if re.search(pattern, name)), None)


def workload_name(
    model: str | ModelConfig,
    precision: str,
    batch: int,
    seq: int,
    clock_mhz: float,
    iterations: int,
    eager: bool,
) -> str:
    """The EnergAIzer workload name of a prefill pass (see the module doc)."""
    cfg = model if isinstance(model, ModelConfig) else load_model_config(model)
    family = cfg.family.replace("_", "")
    config = re.sub(r"[^a-z0-9-]", "-", cfg.id.split("/")[-1].lower().replace(".", "p"))
    tag = "_attneager" if eager else ""
    return (
        f"{family}model_{config}_p{precision}_b{batch}_s{seq}_modeprefill{tag}"
        f"_freq{round(clock_mhz)}_iter{iterations}.csv"
    )


def measurement_row(mm: ModelMeasurement, gpu: str) -> dict[str, str]:
    """The CSV row of a measured prefill pass on the joulecast GPU ``gpu``.

    Raises:
        MeasureError: a decode pass, more than one GPU, or no readable clock or temperature.
    """
    req, m = mm.request, mm.measurement
    if req.phase != "prefill" or req.seq is None:
        raise MeasureError(
            "--save writes prefill passes only: the calibration's measurement format has no "
            "KV-context field"
        )
    if len(m.gpus) != 1:
        raise MeasureError(f"--save writes one GPU's pass; {len(m.gpus)} were measured (--gpus)")
    g = m.gpus[0]
    if g.avg_sm_clock_mhz is None or g.avg_temperature_c is None:
        raise MeasureError("--save needs the SM clock and temperature, which were not readable")
    locked = m.settings.sm_clock_locked and m.settings.requested_sm_clock_mhz is not None
    clock = m.settings.requested_sm_clock_mhz if locked else g.avg_sm_clock_mhz
    assert clock is not None
    name = workload_name(
        req.model,
        req.precision,
        req.batch,
        req.seq,
        clock,
        m.iterations,
        req.attention == "eager",
    )
    p = m.provenance
    return {
        "workload": name,
        "energy": repr(mm.energy_per_pass_j),
        "time": repr(mm.time_per_pass_s * 1e3),
        "avg_freq": repr(g.avg_sm_clock_mhz),
        "temp": repr(g.avg_temperature_c),
        "model_id": req.model.id
        if isinstance(req.model, ModelConfig)
        else load_model_config(req.model).id,
        "gpu": gpu,
        "gpu_name": g.name,
        "sm_clock_locked": "true" if locked else "false",
        "power_limit_w": ""
        if m.settings.power_limit_w is None
        else f"{m.settings.power_limit_w:g}",
        "method": g.method,
        "window_s": f"{m.window_s:.3f}",
        "driver": p.driver,
        "cuda": p.cuda,
        "torch": p.torch,
        "joulecast": p.joulecast,
        "date": p.date,
    }


def append_row(path: Path, row: Mapping[str, str]) -> None:
    """Append ``row`` to the CSV ``path``, writing the header first for a new file.

    An existing file keeps its header: it must have the five measurement columns, and every
    column it has must be one this row fills.

    Raises:
        MeasureError: an existing header that lacks a measurement column or has unknown ones.
    """
    header: list[str] = list(row)
    if path.is_file() and path.stat().st_size > 0:
        with path.open(newline="") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        missing = [c for c in MEASUREMENT_COLUMNS if c not in header]
        unknown = [c for c in header if c not in row]
        if missing or unknown:
            what = f"lacks {', '.join(missing)}" if missing else f"has unknown {', '.join(unknown)}"
            raise MeasureError(f"{path}: cannot append, its header {what}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(header)
    with path.open("a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=header, lineterminator="\n").writerow(
            {c: row[c] for c in header}
        )
