"""The markdown report of the kernel check (docs/kernel-accuracy.md) and its command line.

The protocol is printed at the top of the report:

* **Latency** is reported for all rows and for rows measured at >= 20 us: below that, launch and
  host cost dominate (the fp8_block GEMMs and the attention kernels were not run in CUDA graphs,
  so their floors are host time, 55 us and 10 us).
* **Power and energy** accuracy is therefore headlined on rows of >= 0.1 ms (>= 3 NVML samples,
  :func:`joulecast.calibration.kernel_check.tables.power_reliable`); all rows are shown too.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from joulecast.calibration.kernel_check.metrics import SHAPE_CLASSES, ErrorStats, error_stats
from joulecast.calibration.kernel_check.prediction import (
    KernelPrediction,
    events_at,
    predict,
)
from joulecast.calibration.kernel_check.tables import (
    TABLES,
    FloatArray,
    describe_row,
    power_reliable,
    read_table,
    subsample,
    table_by_name,
)
from joulecast.coefficients import coefficients_for
from joulecast.datapaths import require_data_dir
from joulecast.errors import CalibrationError, DataNotFoundError
from joulecast.hardware.spec import load_gpu
from joulecast.power import coefficient_vector

KERNEL_MIN_LATENCY_S = 20e-6
LATENCY_BUCKETS_S = (20e-6, 100e-6, 1e-3, 10e-3)
WORST_ROWS = 5


def _fmt(x: float, digits: int = 1) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def _stats_cells(s: ErrorStats) -> str:
    return (
        f"{s.n} | {_fmt(s.mape)} | {_fmt(s.mdape)} | {_fmt(s.p90)} | {_fmt(s.bias, 1)} | "
        f"{_fmt(s.within10, 0)}"
    )


_STATS_HEAD = "rows | MAPE | MdAPE | P90 APE | bias | ±10 % share"
_STATS_RULE = "---|---|---|---|---|---"


def _bucket_labels() -> list[tuple[str, float, float]]:
    edges = (0.0, *LATENCY_BUCKETS_S, math.inf)
    out = []
    for lo, hi in itertools.pairwise(edges):
        if lo == 0:
            label = f"< {_us(hi)}"
        elif math.isinf(hi):
            label = f">= {_us(lo)}"
        else:
            label = f"{_us(lo)} – {_us(hi)}"
        out.append((label, lo, hi))
    return out


def _us(s: float) -> str:
    return f"{s * 1e6:g} us" if s < 1e-3 else f"{s * 1e3:g} ms"


def _latency_section(preds: Sequence[KernelPrediction]) -> list[str]:
    out = [
        "## Latency (GPU time per call), errors in %",
        "",
        "bias = mean signed error (+: joulecast too slow); ±10 % share = rows within ±10 %.",
        "",
        f"| table | GPU spec | subset | {_STATS_HEAD} |",
        f"|---|---|---|{_STATS_RULE}|",
    ]
    for p in preds:
        meas = p.rows.latency_s
        big = meas >= KERNEL_MIN_LATENCY_S
        for subset, mask in (("all rows", np.ones_like(big)), (">= 20 us", big)):
            s = error_stats(p.latency_s[mask], meas[mask])
            out.append(f"| {p.rows.table.name} | {p.gpu} | {subset} | {_stats_cells(s)} |")
    out += ["", "### Latency by measured size (MAPE % / bias %, rows)", ""]
    buckets = _bucket_labels()
    out.append("| table | " + " | ".join(b[0] for b in buckets) + " |")
    out.append("|---" * (len(buckets) + 1) + "|")
    for p in preds:
        meas = p.rows.latency_s
        cells = []
        for _, lo, hi in buckets:
            mask = (meas >= lo) & (meas < hi)
            s = error_stats(p.latency_s[mask], meas[mask])
            cells.append("–" if s.n == 0 else f"{_fmt(s.mape)} / {_fmt(s.bias)} ({s.n})")
        out.append(f"| {p.rows.table.name} | " + " | ".join(cells) + " |")
    out += ["", "### Latency by shape class, rows >= 20 us (MAPE % / bias %, rows)", ""]
    for p in preds:
        meas = p.rows.latency_s
        big = meas >= KERNEL_MIN_LATENCY_S
        classes = SHAPE_CLASSES[p.rows.table.kind]
        cells = []
        for label, fn in classes:
            mask = big & fn(p.rows.features)
            s = error_stats(p.latency_s[mask], meas[mask])
            cells.append(f"{label}: {_fmt(s.mape)} / {_fmt(s.bias)} ({s.n})")
        out.append(f"* **{p.rows.table.name}**: " + "; ".join(cells))
    out += ["", "### Largest latency errors, rows >= 20 us", ""]
    out.append("| table | shape | measured ms | predicted ms | error % | model clock MHz |")
    out.append("|---|---|---|---|---|---|")
    for p in preds:
        meas = p.rows.latency_s
        idx = np.flatnonzero(meas >= KERNEL_MIN_LATENCY_S)
        if idx.size == 0:
            continue
        err = p.latency_s[idx] / meas[idx] - 1.0
        order = idx[np.argsort(-np.abs(err))[:WORST_ROWS]]
        for i in order:
            e = (p.latency_s[i] / meas[i] - 1.0) * 100.0
            out.append(
                f"| {p.rows.table.name} | {describe_row(p.rows, int(i))} | {meas[i] * 1e3:.4g} | "
                f"{p.latency_s[i] * 1e3:.4g} | {e:+.0f} | {p.clock_mhz[i]:.0f} |"
            )
    return out


def _energy_at_measured_latency(p: KernelPrediction) -> tuple[FloatArray, FloatArray]:
    """(predicted, measured) energy per call of the settled rows at the measured latency."""
    from joulecast.calibration.memory_energy import power_settled
    from joulecast.calibration.tensor_energy import CAPPED_FRACTION, solved_clocks

    rows = p.rows
    assert rows.power_w is not None and rows.power_limit_w is not None
    sel = power_settled(rows)
    if not sel.any():
        return np.array([]), np.array([])
    spec = load_gpu(p.gpu)
    coeffs = coefficients_for(spec)
    capped = rows.power_w[sel] >= CAPPED_FRACTION * rows.power_limit_w[sel]
    clock = None
    if capped.any() and (~capped).sum() >= 10:
        _, _, t_model = events_at(rows, sel, spec, coeffs)
        clock, _, _ = solved_clocks(rows, sel, spec, t_model)
    ev, idle, _ = events_at(rows, sel, spec, coeffs, clock)
    lat = rows.latency_s[sel]
    pred = ev @ coefficient_vector(coeffs.power) + (idle + coeffs.power.idle_offset_w) * lat
    return np.asarray(pred, dtype=np.float64), rows.power_w[sel] * lat


def _power_section(preds: Sequence[KernelPrediction]) -> list[str]:
    withp = [p for p in preds if p.rows.power_w is not None]
    if not withp:
        return []
    out = [
        "## Power and energy on H200 (errors in %)",
        "",
        "Energy per call = power × latency, measured and predicted. Headline subset: rows of",
        ">= 0.1 ms (>= 3 NVML samples); the all-rows line includes the under-sampled short calls.",
        "",
        f"| table | quantity | subset | {_STATS_HEAD} |",
        f"|---|---|---|{_STATS_RULE}|",
    ]
    for p in withp:
        assert p.rows.power_w is not None
        meas_p = p.rows.power_w
        meas_e = meas_p * p.rows.latency_s
        ok = power_reliable(p.rows.latency_s)
        for subset, mask in ((">= 0.1 ms", ok), ("all rows", np.ones_like(ok))):
            sp = error_stats(p.power_w[mask], meas_p[mask])
            se = error_stats(p.energy_j[mask], meas_e[mask])
            out.append(f"| {p.rows.table.name} | power | {subset} | {_stats_cells(sp)} |")
            out.append(f"| {p.rows.table.name} | energy | {subset} | {_stats_cells(se)} |")
    out += [
        "",
        "### The power model alone: energy per call at the measured latency",
        "",
        "Settled rows (>= 0.1 ms, and the call measured before also >= 0.1 ms: NVML averages",
        "over the last second), with the time-proportional events taken over the measured",
        "latency; uncapped calls at the maximum clock, capped ones (>= 97 % of the limit) at the",
        "clock their latency gives (joulecast.calibration.tensor_energy): what the energy per",
        "event gets right when the time is known. Errors in %.",
        "",
        f"| table | {_STATS_HEAD} |",
        f"|---|{_STATS_RULE}|",
    ]
    for p in withp:
        assert p.rows.power_w is not None
        pred_e, meas_e = _energy_at_measured_latency(p)
        if pred_e.size:
            out.append(f"| {p.rows.table.name} | {_stats_cells(error_stats(pred_e, meas_e))} |")
    out += [
        "",
        "### Power by measured size, rows >= 0.1 ms (MAPE % / bias %, rows; mean W measured → "
        "predicted; share of rows the model throttles)",
        "",
    ]
    sizes = (
        ("0.1 – 1 ms", 0.1e-3, 1e-3),
        ("1 – 10 ms", 1e-3, 10e-3),
        (">= 10 ms", 10e-3, math.inf),
    )
    out.append("| table | " + " | ".join(s[0] for s in sizes) + " |")
    out.append("|---" * (len(sizes) + 1) + "|")
    for p in withp:
        assert p.rows.power_w is not None
        lat = p.rows.latency_s
        cells = []
        for _, lo, hi in sizes:
            mask = (lat >= lo) & (lat < hi)
            s = error_stats(p.power_w[mask], p.rows.power_w[mask])
            if s.n == 0:
                cells.append("–")
                continue
            cells.append(
                f"{_fmt(s.mape)} / {_fmt(s.bias)} ({s.n}); "
                f"{p.rows.power_w[mask].mean():.0f} → {p.power_w[mask].mean():.0f} W; "
                f"{p.throttled[mask].mean() * 100:.0f} % thr."
            )
        out.append(f"| {p.rows.table.name} | " + " | ".join(cells) + " |")
    out += ["", "### Power by shape class, rows >= 0.1 ms (MAPE % / bias %, rows)", ""]
    for p in withp:
        assert p.rows.power_w is not None
        ok = power_reliable(p.rows.latency_s)
        cells = []
        for label, fn in SHAPE_CLASSES[p.rows.table.kind]:
            mask = ok & fn(p.rows.features)
            s = error_stats(p.power_w[mask], p.rows.power_w[mask])
            cells.append(f"{label}: {_fmt(s.mape)} / {_fmt(s.bias)} ({s.n})")
        out.append(f"* **{p.rows.table.name}**: " + "; ".join(cells))
    return out


_HEADER = """# Kernel-level accuracy (aiconfigurator measurements)

Generated by `python -m joulecast.calibration.kernel_check --out docs/kernel-accuracy.md`; do not
edit by hand. Source: NVIDIA aiconfigurator's per-kernel database (data README, section 3).

**Protocol: forecast.** Every row is predicted with the kernel models and the coefficients joulecast
ships (`coefficients_for(spec)`: A100-PCIe fitted values, transferred by physics to the A100-SXM,
H100 and H200). Three numbers are taken from these tables: the fused-attention cost per CTA wave
(3,540 + 25.2·head_dim cycles, from the H100 decode rows with kv_len <= 16 and head_dim < 512);
the Hopper HBM energy per byte, the median over the H200 bf16 GEMM rows with m <= 16 (weight
streaming; settled: ≥ 0.1 ms after a ≥ 0.1 ms call, below 97 % of the power limit); and the
Hopper tensor energy per FLOP, the median over the settled H200 bf16 GEMM rows with m >= 1024,
capped calls at the clock their latency gives (docs/hardware.md). Both are used for the H100 and
H200 power. Nothing else is fitted on them. The measured latency is
GPU time per call of back-to-back calls, so it is compared with joulecast's per-kernel GPU time (no
host dispatch, no pass overhead); fp8 GEMM calls include the activation quantisation kernel and
attention calls the KV-cache write (vLLM's `reshape_and_cache`; an fp8 cache makes bf16 prefill
10-25 % slower in these tables, so the write is inside the timing). Clocks were not locked: each row
runs at the part's maximum clock unless its predicted steady power exceeds the power limit (700 W on
H100/H200, 400 W on A100-SXM), then at the highest clock that fits. Latency is reported for all rows
and for rows of >= 20 us (below, launch and host cost dominate; fp8_block GEMMs and attention ran
outside CUDA graphs, with 55 us and 10 us floors). Power was averaged from 100 ms NVML samples over
at most 3,000 calls: calls under 0.1 ms get fewer than 3 samples, so power and energy are headlined
on rows of >= 0.1 ms, all rows shown too. Nothing else is excluded (throttled large GEMMs stay in).
EnergAIzer reports about 5 % GEMM latency and 3–4 % kernel power error for its kernel models.
"""


def kernel_report(
    data_dir: Path | None = None,
    tables: Sequence[str] | None = None,
    max_rows: int | None = None,
) -> str:
    """Markdown accuracy report over the aiconfigurator tables.

    Args:
        data_dir: the reference-data folder (default: :func:`joulecast.datapaths.require_data_dir`).
        tables: names from :data:`TABLES` to include (default: all).
        max_rows: keep every k-th row so that at most this many remain per table (for quick runs).
    """
    base = data_dir if data_dir is not None else require_data_dir()
    chosen = [table_by_name(n) for n in tables] if tables is not None else list(TABLES)
    preds: list[KernelPrediction] = []
    inventory = [
        "## Tables",
        "",
        "| table | file | measured on | joulecast spec | coefficients | rows | dropped | "
        "model-throttled rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in chosen:
        rows = read_table(t, base)
        if max_rows is not None:
            rows = subsample(rows, max_rows)
        p = predict(rows)
        preds.append(p)
        inventory.append(
            f"| {t.name} | `{t.file}` | {t.measured_on} | {p.gpu} | {p.coefficients} | "
            f"{len(rows)} | {rows.dropped} | {int(p.throttled.sum())} |"
        )
    note = [] if max_rows is None else ["", f"Subsampled: at most {max_rows} rows per table.", ""]
    body = [*inventory, *note, "", *_latency_section(preds), "", *_power_section(preds)]
    return _HEADER + "\n" + "\n".join(body).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m joulecast.calibration.kernel_check [--data DIR] [--out FILE]``."""
    parser = argparse.ArgumentParser(
        prog="python -m joulecast.calibration.kernel_check",
        description="Kernel-level accuracy of joulecast on the aiconfigurator measurements.",
    )
    parser.add_argument("--data", type=Path, default=None, help="reference-data folder")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here")
    parser.add_argument("--table", action="append", default=None, help="only this table")
    parser.add_argument("--max-rows", type=int, default=None, help="subsample each table")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        text = kernel_report(args.data, args.table, args.max_rows)
    except (CalibrationError, DataNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    if args.out is not None:
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    print(f"kernel report: {elapsed:.1f} s", file=sys.stderr)
    return 0
