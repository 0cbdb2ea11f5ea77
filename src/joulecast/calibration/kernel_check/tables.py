"""Reading aiconfigurator's kernel tables: which files, how to parse them, which rows to trust.

The aiconfigurator tables (``<data>/aiconfigurator/``, described in the data README, section 3)
time tens of thousands of GEMM and attention shapes back to back on H100-SXM and A100-SXM, and
record latency plus NVML power of the same kernels on an H200. :data:`TABLES` lists them;
:func:`read_table` turns one into per-row kernels (:mod:`.calls`) and measurements.

* **Rows.** Every row is read; rows with a non-positive or non-finite latency (or power, in the
  power tables) would be dropped and counted (none are).
* **Power.** NVML was sampled every 100 ms during a timed loop of at most 3,000 calls that aims at
  0.3 s (calls under 0.1 ms) or 1 s: a call shorter than 0.1 ms is averaged over fewer than 3
  samples (3,000 x latency < 0.3 s), which the README says reads low and noisy
  (:func:`power_reliable`). Throttled large GEMMs are kept (the README flags them; the power-cap
  model should cover them); :func:`unthrottled_reliable` picks the rows the limiter did not hold.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from joulecast.calibration.kernel_check.calls import Kind, attention_ops, gemm_ops
from joulecast.datapaths import require_data_dir
from joulecast.errors import CalibrationError, DataNotFoundError
from joulecast.workload.ir import Op

FloatArray = NDArray[np.float64]

SUBDIR = "aiconfigurator"
# Power rows need >= 3 NVML samples (100 ms apart): 3,000 calls x latency >= 0.3 s.
POWER_MIN_LATENCY_S = 0.1e-3
NVML_PERIOD_S = 0.1
MAX_CALLS = 3000
UNTHROTTLED_FRACTION = 0.97


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
    # A collected table (`joulecast measure kernels`): rows kept where column == value, and the
    # SM clock they were locked at (None: the driver's clocks).
    where: tuple[tuple[str, str], ...] = ()
    locked_clock_mhz: float | None = None


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


# Reading


def _read_columns(
    path: Path, required: Sequence[str], where: Sequence[tuple[str, str]] = ()
) -> tuple[dict[str, list[str]], int]:
    """Columns of a CSV file as strings (rows where every ``column == value`` of ``where``);
    one-line errors for a missing file or column."""
    if not path.is_file():
        raise DataNotFoundError(f"kernel table not found: {path}")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise CalibrationError(f"{path.name}: empty file")
        header = [h.strip() for h in header]
        missing = [c for c in (*required, *(c for c, _ in where)) if c not in header]
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
            if any(rec[header.index(c)].strip() != v for c, v in where):
                continue
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


def read_table(table: KernelTable, data_dir: Path | None = None) -> KernelRows:
    """Read one aiconfigurator table (or a collected one) into per-row kernels and measurements."""
    path = Path(table.file)
    if not path.is_absolute():
        path = (data_dir if data_dir is not None else require_data_dir()) / SUBDIR / table.file
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
    cols, n_rows = _read_columns(path, required, table.where)
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
            ops.append(gemm_ops(int(m[i]), int(n[i]), int(k[i]), table.dtype))
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
            attn_ops = attention_ops(
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
    return take_rows(rows, np.arange(0, len(rows), step))


def take_rows(rows: KernelRows, sel: NDArray[np.intp]) -> KernelRows:
    """The rows at indices ``sel``, in that order."""
    return KernelRows(
        table=rows.table,
        ops=tuple(rows.ops[i] for i in sel),
        latency_s=rows.latency_s[sel],
        power_w=None if rows.power_w is None else rows.power_w[sel],
        power_limit_w=None if rows.power_limit_w is None else rows.power_limit_w[sel],
        features={k: v[sel] for k, v in rows.features.items()},
        dropped=rows.dropped,
    )


def collected_tables(path: Path, gpu: str | None = None) -> tuple[KernelTable, ...]:
    """The kernel tables in a file of ``joulecast measure kernels``: one per kind (GEMM, prefill
    and decode attention), GEMM precision and locked clock, read with :func:`read_table`.

    Args:
        path: the collected CSV (aiconfigurator power-table columns plus ``kind``).
        gpu: joulecast GPU id of the rows (default: the file's ``gpu`` column).

    Raises:
        CalibrationError: no GEMM or attention rows, or no GPU id.
    """
    cols, _ = _read_columns(path, ("kind", "gemm_dtype", "gpu", "gpu_name", "sm_clock_locked_mhz"))
    kinds: dict[str, Kind] = {
        "gemm": "gemm",
        "context_attention": "context",
        "generation_attention": "generation",
    }
    groups = dict.fromkeys(
        (k, d if k == "gemm" else "", c)
        for k, d, c in zip(
            cols["kind"], cols["gemm_dtype"], cols["sm_clock_locked_mhz"], strict=True
        )
        if k in kinds
    )
    if not groups:
        raise CalibrationError(f"{path.name}: no GEMM or attention rows")
    gpu_id = gpu or next((g for g in cols["gpu"] if g), "")
    if not gpu_id:
        raise CalibrationError(f"{path.name}: no joulecast GPU id in the file; give one")
    out = []
    for kind, dtype, clock in groups:
        where = (("kind", kind), ("gemm_dtype", dtype), ("sm_clock_locked_mhz", clock))
        at = f" at {float(clock):g} MHz" if clock else ""
        label = f" {dtype}" if dtype else ""
        out.append(
            KernelTable(
                name=f"collected {kind}{label}{at} ({path.name})",
                file=str(path.resolve()),
                kind=kinds[kind],
                gpu=gpu_id,
                measured_on=cols["gpu_name"][cols["kind"].index(kind)],
                dtype="bf16" if dtype in ("", "bfloat16", "bf16") else dtype,
                power=True,
                where=where,
                locked_clock_mhz=float(clock) if clock else None,
            )
        )
    return tuple(out)


# Row filtering


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


def unthrottled_reliable(rows: KernelRows) -> NDArray[np.bool_]:
    """Rows whose power rests on >= 3 NVML samples and sits below 97 % of the power limit (the
    limiter did not hold them, so they ran at the maximum clock)."""
    assert rows.power_w is not None and rows.power_limit_w is not None
    return np.asarray(
        power_reliable(rows.latency_s) & (rows.power_w < UNTHROTTLED_FRACTION * rows.power_limit_w)
    )
