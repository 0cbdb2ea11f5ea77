"""Kernel-level accuracy: joulecast's kernel models against aiconfigurator's measured kernels.

The aiconfigurator tables (``<data>/aiconfigurator/``, described in the data README, section 3)
time tens of thousands of GEMM and attention shapes back to back on H100-SXM and A100-SXM, and
record latency plus NVML power of the same kernels on an H200. This module reads them, predicts
every row with joulecast's kernel models and power model as shipped, and reports latency, power
and energy errors. Two numbers come from these tables: for latency, the fused-attention cost per
CTA wave (a labelled subset of the H100 decode table, :mod:`joulecast.kernels.attention`); for
power, the Hopper HBM energy per byte, the median over the H200 bf16 GEMM rows with m <= 16
(:mod:`joulecast.calibration.memory_energy`).

Protocol (also printed at the top of the report):

* **What is compared.** The measured latency is the GPU time of one call of back-to-back calls,
  so it is compared with joulecast's per-kernel GPU time (:func:`joulecast.timeline.kernel_times`),
  not with a synchronised pass (no host dispatch, no pass overhead). A row whose call runs more
  than one kernel sums its kernels: fp8 GEMMs include the activation quantisation, attention
  calls the KV-cache write (see :func:`_attention_ops`).
* **Clock.** The tables were taken with clocks not locked at the default power limit, so every
  row runs at the part's maximum clock unless its predicted steady-state power
  (``idle(f) + E_kernel(f) / t_kernel(f)``, back to back) exceeds the limit; then at the highest
  supported clock that fits, as :func:`joulecast.estimator.estimate` does for a whole pass.
* **Coefficients.** Whatever :func:`joulecast.estimator.coefficients_for` gives for the part
  (shipped, or transferred by physics from the calibrated parts).
* **Rows.** Every row is predicted; rows with a non-positive or non-finite latency would be dropped
  and counted (none are). Latency is reported for all rows and for rows measured at >= 20 us:
  below that, launch and host cost dominate (the fp8_block GEMMs and the attention kernels were not
  run in CUDA graphs, so their floors are host time, 55 us and 10 us).
* **Power.** NVML was sampled every 100 ms during a timed loop of at most 3,000 calls that aims at
  0.3 s (calls under 0.1 ms) or 1 s: a call shorter than 0.1 ms is averaged over fewer than 3
  samples (3,000 x latency < 0.3 s), which the README says reads low and noisy. Power and energy
  accuracy is therefore headlined on rows of >= 0.1 ms (>= 3 samples); all rows are shown too.
  Throttled large GEMMs are kept (the README flags them; the power-cap model should cover them).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from joulecast.coefficients import coefficients_for
from joulecast.coefficients.params import GpuCoefficients
from joulecast.datapaths import require_data_dir
from joulecast.dvfs import dvfs_curve, regulated_power_w
from joulecast.errors import CalibrationError, DataNotFoundError
from joulecast.hardware.spec import GPUSpec, load_gpu
from joulecast.power import FEATURES, coefficient_vector, event_matrix
from joulecast.timeline import compile_workload, kernel_times
from joulecast.workload.ir import Attention, Copy, Elementwise, Gemm, Op, Precision, Workload

FloatArray = NDArray[np.float64]
Kind = Literal["gemm", "context", "generation"]

SUBDIR = "aiconfigurator"
KERNEL_MIN_LATENCY_S = 20e-6
# Power rows need >= 3 NVML samples (100 ms apart): 3,000 calls x latency >= 0.3 s.
POWER_MIN_LATENCY_S = 0.1e-3
NVML_PERIOD_S = 0.1
MAX_CALLS = 3000
LATENCY_BUCKETS_S = (20e-6, 100e-6, 1e-3, 10e-3)
_CLOCK_CHUNK = 16
WORST_ROWS = 5


@dataclass(frozen=True)
class KernelTable:
    """One aiconfigurator measurement file and how to read it."""

    name: str
    file: str
    kind: Kind
    gpu: str
    measured_on: str
    dtype: str
    power: bool


TABLES: tuple[KernelTable, ...] = (
    KernelTable(
        "h100 gemm bf16",
        "h100_sxm_vllm_gemm_bf16.csv",
        "gemm",
        "h100-sxm",
        "H100-SXM",
        "bf16",
        False,
    ),
    KernelTable(
        "h100 gemm fp8", "h100_sxm_vllm_gemm_fp8.csv", "gemm", "h100-sxm", "H100-SXM", "fp8", False
    ),
    KernelTable(
        "h100 gemm fp8_block",
        "h100_sxm_vllm_gemm_fp8_block.csv",
        "gemm",
        "h100-sxm",
        "H100-SXM",
        "fp8_block",
        False,
    ),
    KernelTable(
        "a100 gemm bf16",
        "a100_sxm_vllm_gemm_bf16.csv",
        "gemm",
        "a100-sxm4-80gb",
        "A100-SXM4-80GB",
        "bf16",
        False,
    ),
    KernelTable(
        "h100 context attention",
        "h100_sxm_vllm_context_attention.csv",
        "context",
        "h100-sxm",
        "H100-SXM",
        "bf16",
        False,
    ),
    KernelTable(
        "h100 generation attention",
        "h100_sxm_vllm_generation_attention.csv",
        "generation",
        "h100-sxm",
        "H100-SXM",
        "bf16",
        False,
    ),
    KernelTable(
        "h200 gemm bf16",
        "h200_sxm_vllm_gemm_power_bfloat16.csv",
        "gemm",
        "h200",
        "H200-SXM",
        "bf16",
        True,
    ),
    KernelTable(
        "h200 gemm fp8_block",
        "h200_sxm_vllm_gemm_power_fp8_block.csv",
        "gemm",
        "h200",
        "H200-SXM",
        "fp8_block",
        True,
    ),
    KernelTable(
        "h200 context attention",
        "h200_sxm_vllm_context_attention_power.csv",
        "context",
        "h200",
        "H200-SXM",
        "bf16",
        True,
    ),
    KernelTable(
        "h200 generation attention",
        "h200_sxm_vllm_generation_attention_power.csv",
        "generation",
        "h200",
        "H200-SXM",
        "bf16",
        True,
    ),
)


def table_by_name(name: str) -> KernelTable:
    """The table called ``name`` (one-line error listing the known ones otherwise)."""
    for t in TABLES:
        if t.name == name:
            return t
    known = ", ".join(t.name for t in TABLES)
    raise CalibrationError(f"unknown kernel table '{name}' (known: {known})")


@dataclass(frozen=True)
class KernelRows:
    """Parsed rows of one table: the kernels each row runs, and what was measured.

    ``ops`` holds, per row, the ops one measured call runs (the same number for every row);
    ``features`` the shape columns (numeric) used to group errors.
    """

    table: KernelTable
    ops: tuple[tuple[Op, ...], ...]
    latency_s: FloatArray
    power_w: FloatArray | None
    power_limit_w: FloatArray | None
    features: dict[str, FloatArray]
    dropped: int

    def __len__(self) -> int:
        return len(self.ops)


# Reading


def _read_columns(path: Path, required: Sequence[str]) -> tuple[dict[str, list[str]], int]:
    """Columns of a CSV file as strings; one-line errors for a missing file or column."""
    if not path.is_file():
        raise DataNotFoundError(f"kernel table not found: {path}")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise CalibrationError(f"{path.name}: empty file")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise CalibrationError(
                f"{path.name}: missing column(s) {', '.join(missing)} (has: {', '.join(header)})"
            )
        idx = {c: header.index(c) for c in required}
        cols: dict[str, list[str]] = {c: [] for c in required}
        n = 0
        for line_no, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) < len(header):
                raise CalibrationError(
                    f"{path.name}: line {line_no} has {len(rec)} fields, header has {len(header)}"
                )
            for c, i in idx.items():
                cols[c].append(rec[i].strip())
            n += 1
    return cols, n


def _numbers(path: Path, cols: Mapping[str, list[str]], name: str) -> FloatArray:
    try:
        return np.array([float(v) if v else math.nan for v in cols[name]], dtype=np.float64)
    except ValueError:
        bad = next(v for v in cols[name] if not _is_number(v))
        raise CalibrationError(f"{path.name}: column {name} has a non-number '{bad}'") from None


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _integers(path: Path, cols: Mapping[str, list[str]], name: str) -> NDArray[np.int64]:
    x = _numbers(path, cols, name)
    if not np.all(np.isfinite(x)) or np.any(x != np.round(x)) or np.any(x < 0):
        raise CalibrationError(f"{path.name}: column {name} must hold non-negative integers")
    return x.astype(np.int64)


_GEMM_COLUMNS = ("m", "n", "k")
_ATTN_COLUMNS = (
    "batch_size",
    "num_heads",
    "num_key_value_heads",
    "head_dim",
    "window_size",
    "kv_cache_dtype",
)
_LATENCY_COLUMNS = ("latency_ms", "latency")


def _latency_column(path: Path) -> str:
    with path.open(newline="") as fh:
        header = [h.strip() for h in next(csv.reader(fh), [])]
    for c in _LATENCY_COLUMNS:
        if c in header:
            return c
    raise CalibrationError(
        f"{path.name}: missing column latency_ms (or latency) (has: {', '.join(header)})"
    )


def _gemm_ops(m: int, n: int, k: int, dtype: str) -> tuple[Op, ...]:
    """The kernels of one measured GEMM call.

    bf16: one GEMM. fp8 / fp8_block: the timing includes quantising the bf16 activation, one
    more streaming kernel (read m·k bf16, write m·k fp8), then the fp8 GEMM with bf16 output.
    """
    if dtype == "bf16":
        return (Gemm(m, n, k, precision=Precision.BF16),)
    quant = Elementwise(
        m * k, op="cast", inputs=1, precision=Precision.BF16, out_precision=Precision.FP8
    )
    return (quant, Gemm(m, n, k, precision=Precision.FP8, out_precision=Precision.BF16))


def _attention_ops(
    kind: Kind,
    batch: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    window: int,
    length: int,
    kv_fp8: bool,
) -> tuple[Op, ...]:
    """The kernels of one measured attention call: KV-cache write, then fused attention.

    vLLM's attention layer first writes the new tokens' K and V into the paged cache
    (``reshape_and_cache``: a copy, or a quantising cast for an fp8 cache), then runs the fused
    kernel. The tables show the write is timed: with an fp8 cache, prefill is 10-25 % slower than
    with a bf16 cache although it computes in bf16. Prefill (``context``): causal self-attention
    over ``length`` new tokens, computed in the activation dtype (bf16). Decode (``generation``):
    one query token per sequence over a paged KV cache of ``length``, read in the cache dtype.
    """
    win = window if window > 0 else None
    new_tokens = length if kind == "context" else 1
    kv_elements = batch * new_tokens * kv_heads * head_dim * 2
    write: Op = (
        Elementwise(
            kv_elements, op="cast", inputs=1, precision=Precision.BF16, out_precision=Precision.FP8
        )
        if kv_fp8
        else Copy(kv_elements, precision=Precision.BF16)
    )
    if kind == "context":
        attn = Attention(
            batch,
            heads,
            length,
            length,
            head_dim,
            kv_heads=kv_heads,
            window=win,
            precision=Precision.BF16,
        )
    else:
        attn = Attention(
            batch,
            heads,
            1,
            length,
            head_dim,
            kv_heads=kv_heads,
            window=win,
            paged=True,
            precision=Precision.FP8 if kv_fp8 else Precision.BF16,
        )
    return (write, attn)


def read_table(table: KernelTable, data_dir: Path | None = None) -> KernelRows:
    """Read one aiconfigurator table into per-row kernels and measurements."""
    base = (data_dir if data_dir is not None else require_data_dir()) / SUBDIR
    path = base / table.file
    if not path.is_file():
        raise DataNotFoundError(f"kernel table not found: {path}")
    lat_col = _latency_column(path)
    extra = ("power", "power_limit") if table.power else ()
    if table.kind == "gemm":
        required: tuple[str, ...] = (*_GEMM_COLUMNS, lat_col, *extra)
    elif table.kind == "context":
        required = (*_ATTN_COLUMNS, "isl", lat_col, *extra)
    else:
        # Decode: the KV length is ``kv_len``, or ``isl + step`` where kv_len is absent.
        with path.open(newline="") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
        length_cols = ("kv_len",) if "kv_len" in header else ("isl", "step")
        required = (*_ATTN_COLUMNS, *length_cols, lat_col, *extra)
    cols, n_rows = _read_columns(path, required)
    latency = _numbers(path, cols, lat_col) * 1e-3
    power = _numbers(path, cols, "power") if table.power else None
    limit = _numbers(path, cols, "power_limit") if table.power else None
    keep = np.isfinite(latency) & (latency > 0)
    if power is not None:
        keep &= np.isfinite(power) & (power > 0)

    features: dict[str, FloatArray] = {}
    ops: list[tuple[Op, ...]] = []
    if table.kind == "gemm":
        m, n, k = (_integers(path, cols, c) for c in _GEMM_COLUMNS)
        keep &= (m > 0) & (n > 0) & (k > 0)
        for i in np.flatnonzero(keep):
            ops.append(_gemm_ops(int(m[i]), int(n[i]), int(k[i]), table.dtype))
        features = {"m": m[keep].astype(float), "n": n[keep].astype(float)}
        features["k"] = k[keep].astype(float)
    else:
        b, h, kvh, d, w = (_integers(path, cols, c) for c in _ATTN_COLUMNS[:5])
        if table.kind == "context":
            length = _integers(path, cols, "isl")
        elif "kv_len" in cols:
            length = _integers(path, cols, "kv_len")
        else:
            length = _integers(path, cols, "isl") + _integers(path, cols, "step")
        fp8 = np.array(
            [v.lower() in ("fp8", "fp8_e4m3", "float8_e4m3fn") for v in cols["kv_cache_dtype"]]
        )
        keep &= (b > 0) & (h > 0) & (kvh > 0) & (d > 0) & (length > 0)
        for i in np.flatnonzero(keep):
            attn_ops = _attention_ops(
                table.kind,
                int(b[i]),
                int(h[i]),
                int(kvh[i]),
                int(d[i]),
                int(w[i]),
                int(length[i]),
                bool(fp8[i]),
            )
            ops.append(attn_ops)
        features = {
            "batch": b[keep].astype(float),
            "heads": h[keep].astype(float),
            "kv_heads": kvh[keep].astype(float),
            "head_dim": d[keep].astype(float),
            "window": w[keep].astype(float),
            "length": length[keep].astype(float),
            "kv_fp8": fp8[keep].astype(float),
        }
    return KernelRows(
        table=table,
        ops=tuple(ops),
        latency_s=latency[keep],
        power_w=None if power is None else power[keep],
        power_limit_w=None if limit is None else limit[keep],
        features=features,
        dropped=int(n_rows - keep.sum()),
    )


def subsample(rows: KernelRows, max_rows: int) -> KernelRows:
    """Every k-th row so that at most ``max_rows`` remain (deterministic, spans all shapes)."""
    if max_rows <= 0 or len(rows) <= max_rows:
        return rows
    step = math.ceil(len(rows) / max_rows)
    sel = np.arange(0, len(rows), step)
    return KernelRows(
        table=rows.table,
        ops=tuple(rows.ops[i] for i in sel),
        latency_s=rows.latency_s[sel],
        power_w=None if rows.power_w is None else rows.power_w[sel],
        power_limit_w=None if rows.power_limit_w is None else rows.power_limit_w[sel],
        features={k: v[sel] for k, v in rows.features.items()},
        dropped=rows.dropped,
    )


# Prediction


@dataclass(frozen=True)
class KernelPrediction:
    """joulecast's forecast of every row: GPU time per call, steady power, and clock."""

    rows: KernelRows
    gpu: str
    coefficients: str
    latency_s: FloatArray
    power_w: FloatArray
    clock_mhz: FloatArray
    throttled: NDArray[np.bool_]

    @property
    def energy_j(self) -> FloatArray:
        return self.power_w * self.latency_s


def predict(
    rows: KernelRows, gpu: GPUSpec | None = None, coefficients: GpuCoefficients | None = None
) -> KernelPrediction:
    """Predict every row at the part's maximum clock, lowered where power exceeds the limit.

    Vectorised: all rows are compiled as one workload (unique shapes costed once), kernel times
    and energies are evaluated over all supported clocks, and each row keeps the highest clock
    whose back-to-back power fits its power limit.
    """
    spec = gpu if gpu is not None else load_gpu(rows.table.gpu)
    coeffs = coefficients if coefficients is not None else coefficients_for(spec)
    if not rows.ops:
        raise CalibrationError(f"{rows.table.name}: no valid rows to predict")
    per_row = len(rows.ops[0])
    if any(len(r) != per_row for r in rows.ops):
        raise CalibrationError(f"{rows.table.name}: rows run different numbers of kernels")
    flat = tuple(op for r in rows.ops for op in r)
    cw = compile_workload(Workload(rows.table.name, flat), spec)
    clocks = np.asarray(spec.supported_clocks_mhz(), dtype=np.float64)
    curve = dvfs_curve(spec)
    idle = curve.idle_power(clocks) + coeffs.power.idle_offset_w
    v2 = curve.v2_ratio(clocks, coeffs.ref_clock_mhz)
    cvec = coefficient_vector(coeffs.power)
    n_u, n_c = len(cw.unique_ops), len(clocks)
    t_u = np.empty((n_u, n_c))
    e_u = np.empty((n_u, n_c))
    for lo in range(0, n_c, _CLOCK_CHUNK):
        sl = slice(lo, lo + _CLOCK_CHUNK)
        t_chunk = kernel_times(cw, coeffs.time, clocks[sl])
        t_u[:, sl] = t_chunk
        e_u[:, sl] = event_matrix(cw, t_chunk, clocks[sl], v2[sl]) @ cvec
    n = len(rows.ops)
    t_row = t_u[cw.order].reshape(n, per_row, n_c).sum(axis=1)
    e_row = e_u[cw.order].reshape(n, per_row, n_c).sum(axis=1)
    p_row = idle[None, :] + e_row / t_row
    cap = (
        rows.power_limit_w
        if rows.power_limit_w is not None
        else np.full(n, spec.default_power_limit_w)
    )
    fits = p_row <= regulated_power_w(cap)[:, None]
    # Highest fitting clock (clocks ascend); the lowest clock when none fits.
    last_fit = n_c - 1 - np.argmax(fits[:, ::-1], axis=1)
    idx = np.where(fits.any(axis=1), last_fit, 0)
    sel = np.arange(n)
    return KernelPrediction(
        rows=rows,
        gpu=spec.id,
        coefficients=coeffs.origin,
        latency_s=np.asarray(t_row[sel, idx], dtype=np.float64),
        power_w=np.asarray(p_row[sel, idx], dtype=np.float64),
        clock_mhz=np.asarray(clocks[idx], dtype=np.float64),
        throttled=np.asarray(idx < n_c - 1),
    )


def events_at_measured_latency(
    rows: KernelRows,
    select: NDArray[np.bool_],
    gpu: GPUSpec | None = None,
    coefficients: GpuCoefficients | None = None,
) -> tuple[FloatArray, float]:
    """Per-call energy events of the selected rows at the part's maximum clock, with the
    time-proportional events (busy power, SM-cycles) taken over the *measured* latency.

    This isolates the power model from the latency model: ``events @ coefficients + idle ·
    latency`` is the energy per call the power model gives when the time is known.

    Returns:
        (events of shape (selected rows, features), in J per unit coefficient; idle power W).
    """
    spec = gpu if gpu is not None else load_gpu(rows.table.gpu)
    coeffs = coefficients if coefficients is not None else coefficients_for(spec)
    idx = np.flatnonzero(select)
    if len(idx) == 0:
        raise CalibrationError(f"{rows.table.name}: no rows selected")
    per_row = len(rows.ops[0])
    cw = compile_workload(
        Workload(rows.table.name, tuple(op for i in idx for op in rows.ops[i])), spec
    )
    clock = np.array([float(spec.max_clock_mhz)])
    curve = dvfs_curve(spec)
    t_u = kernel_times(cw, coeffs.time, clock)
    ev = event_matrix(cw, t_u, clock, curve.v2_ratio(clock, coeffs.ref_clock_mhz))[:, 0, :]
    n = len(idx)
    ev_row = ev[cw.order].reshape(n, per_row, -1).sum(axis=1)
    t_row = t_u[cw.order, 0].reshape(n, per_row).sum(axis=1)
    time_cols = [FEATURES.index("busy_w"), FEATURES.index("sm_pj_per_cycle")]
    ev_row[:, time_cols] *= (rows.latency_s[idx] / t_row)[:, None]
    idle = float(curve.idle_power(clock)[0]) + coeffs.power.idle_offset_w
    return np.asarray(ev_row, dtype=np.float64), idle


def unthrottled_reliable(rows: KernelRows) -> NDArray[np.bool_]:
    """Rows whose power rests on >= 3 NVML samples and sits below 97 % of the power limit (the
    limiter did not hold them, so they ran at the maximum clock)."""
    assert rows.power_w is not None and rows.power_limit_w is not None
    return np.asarray(
        power_reliable(rows.latency_s) & (rows.power_w < UNTHROTTLED_FRACTION * rows.power_limit_w)
    )


UNTHROTTLED_FRACTION = 0.97


# Metrics


@dataclass(frozen=True)
class ErrorStats:
    """Relative errors of predictions against measurements, in percent.

    ``bias`` is the mean signed error (positive: joulecast predicts too high); ``within10`` the
    share of rows within ±10 %.
    """

    n: int
    mape: float
    mdape: float
    p90: float
    bias: float
    within10: float


def error_stats(predicted: FloatArray, measured: FloatArray) -> ErrorStats:
    """MAPE, median and 90th-percentile APE, signed bias and ±10 % share (all in %)."""
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    if p.shape != m.shape:
        raise CalibrationError(f"shape mismatch: {p.shape} predictions vs {m.shape} measurements")
    if p.size == 0:
        nan = float("nan")
        return ErrorStats(0, nan, nan, nan, nan, nan)
    if np.any(m <= 0):
        raise CalibrationError("measurements must be positive for relative errors")
    signed = (p / m - 1.0) * 100.0
    ape = np.abs(signed)
    return ErrorStats(
        n=int(p.size),
        mape=float(ape.mean()),
        mdape=float(np.median(ape)),
        p90=float(np.percentile(ape, 90)),
        bias=float(signed.mean()),
        within10=float((ape <= 10.0 + 1e-9).mean() * 100.0),
    )


def nvml_samples(latency_s: FloatArray) -> FloatArray:
    """NVML power samples a row's timed loop spans (100 ms period, at most 3,000 calls, aiming
    at 0.3 s for calls under 0.1 ms and 1 s otherwise)."""
    lat = np.asarray(latency_s, dtype=np.float64)
    target = np.where(lat < 0.1e-3, 0.3, 1.0)
    window = np.minimum(MAX_CALLS * lat, target)
    return np.asarray(np.floor(window / NVML_PERIOD_S + 1e-9), dtype=np.float64)


def power_reliable(latency_s: FloatArray) -> NDArray[np.bool_]:
    """Rows whose measured power rests on >= 3 NVML samples (latency >= 0.1 ms)."""
    return np.asarray(nvml_samples(latency_s) >= 3)


# Shape classes used to locate errors (labels and row masks over the features).

ClassFn = Callable[[Mapping[str, FloatArray]], NDArray[np.bool_]]

_GEMM_CLASSES: tuple[tuple[str, ClassFn], ...] = (
    ("m <= 16 (weight streaming)", lambda f: f["m"] <= 16),
    ("16 < m <= 256", lambda f: (f["m"] > 16) & (f["m"] <= 256)),
    ("256 < m <= 2048", lambda f: (f["m"] > 256) & (f["m"] <= 2048)),
    ("m > 2048", lambda f: f["m"] > 2048),
    ("n <= 256 (skinny n)", lambda f: f["n"] <= 256),
    ("k <= 512 (short k)", lambda f: f["k"] <= 512),
    ("k >= 51200 (huge k)", lambda f: f["k"] >= 51200),
)
_CONTEXT_CLASSES: tuple[tuple[str, ClassFn], ...] = (
    ("isl <= 512", lambda f: f["length"] <= 512),
    ("1024 <= isl <= 4096", lambda f: (f["length"] >= 1024) & (f["length"] <= 4096)),
    ("isl >= 6144", lambda f: f["length"] >= 6144),
    ("full causal", lambda f: f["window"] == 0),
    ("sliding window", lambda f: f["window"] > 0),
    ("fp8 KV cache", lambda f: f["kv_fp8"] > 0),
    ("head_dim >= 192", lambda f: f["head_dim"] >= 192),
)
_GENERATION_CLASSES: tuple[tuple[str, ClassFn], ...] = (
    ("kv_len <= 64", lambda f: f["length"] <= 64),
    ("128 <= kv_len <= 2048", lambda f: (f["length"] >= 128) & (f["length"] <= 2048)),
    ("kv_len >= 4096", lambda f: f["length"] >= 4096),
    ("batch >= 256", lambda f: f["batch"] >= 256),
    ("sliding window", lambda f: f["window"] > 0),
    ("fp8 KV cache", lambda f: f["kv_fp8"] > 0),
)
SHAPE_CLASSES: dict[str, tuple[tuple[str, ClassFn], ...]] = {
    "gemm": _GEMM_CLASSES,
    "context": _CONTEXT_CLASSES,
    "generation": _GENERATION_CLASSES,
}


def describe_row(rows: KernelRows, i: int) -> str:
    """Compact shape of row ``i`` (``m x n x k`` or the attention parameters)."""
    f = rows.features
    if rows.table.kind == "gemm":
        return f"{int(f['m'][i])}x{int(f['n'][i])}x{int(f['k'][i])}"
    win = int(f["window"][i])
    name = "isl" if rows.table.kind == "context" else "kv"
    return (
        f"b{int(f['batch'][i])} h{int(f['heads'][i])}/{int(f['kv_heads'][i])} "
        f"d{int(f['head_dim'][i])} {name}{int(f['length'][i])}"
        f"{f' w{win}' if win else ''}{' fp8kv' if f['kv_fp8'][i] else ''}"
    )


# Report


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
        "Unthrottled rows of >= 0.1 ms (below 97 % of the limit, so at the maximum clock), with",
        "the time-proportional events taken over the measured latency: what the energy per event",
        "gets right when the time is known. Errors in %.",
        "",
        f"| table | {_STATS_HEAD} |",
        f"|---|{_STATS_RULE}|",
    ]
    for p in withp:
        assert p.rows.power_w is not None
        sel = unthrottled_reliable(p.rows)
        if not sel.any():
            continue
        spec = load_gpu(p.gpu)
        coeffs = coefficients_for(spec)
        ev, idle = events_at_measured_latency(p.rows, sel, spec, coeffs)
        lat = p.rows.latency_s[sel]
        pred_e = ev @ coefficient_vector(coeffs.power) + idle * lat
        meas_e = p.rows.power_w[sel] * lat
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
H100 and H200). Two numbers are taken from these tables: the fused-attention cost per CTA wave
(3,540 + 25.2·head_dim cycles, from the H100 decode rows with kv_len <= 16 and head_dim < 512),
and the Hopper HBM energy per byte, the median over the H200 bf16 GEMM rows with m <= 16 (weight
streaming; ≥ 0.1 ms, below 97 % of the power limit), used for the H100 and H200 power. Nothing
else is fitted on them. The measured latency is
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


if __name__ == "__main__":
    raise SystemExit(main())
