"""The CSV of ``joulecast measure kernels``: aiconfigurator's power-table columns and more.

One file holds every kind of kernel, one row per measured shape, :data:`KERNEL_COLUMNS`:

* ``kind`` (gemm, context_attention, generation_attention, norm, pointwise);
* the columns of aiconfigurator's H200 power tables (data README, section 3): ``kernel_source``,
  the shape (``gemm_dtype, m, n, k``; ``batch_size, isl, num_heads, num_key_value_heads,
  head_dim, beam_width, attn_dtype, kv_cache_dtype, step, window_size``, where decode rows carry
  the KV length in ``isl`` with ``step`` 0), ``latency`` (ms per call), ``power`` (W, average
  over the window), ``power_limit`` (W); a cell that does not apply to the row's kind is empty;
* norms and pointwise ops: ``op, num_tokens, hidden_size, elements``;
* ``energy_j`` per call, ``calls``, ``window_s``, the mean ``sm_clock_mhz``, the locked clock
  ``sm_clock_locked_mhz`` (empty: the driver's clocks), ``temperature_c``, ``method`` (energy
  counter or integrated power), the joulecast ``gpu`` id, and the provenance: ``gpu_name,
  driver, cuda, torch, joulecast, date``.

:func:`joulecast.calibration.kernel_check.tables.collected_tables` reads the GEMM and attention
rows back as kernel tables, one per kind, precision and clock.
"""

from __future__ import annotations

import csv
from pathlib import Path

from joulecast.measure.kernels import CONTEXT, GEMM, GENERATION, NORM, Collection, KernelRow
from joulecast.measure.meter import MeasureError
from joulecast.measure.settings import Provenance

GEMM_DTYPES = {"bf16": "bfloat16", "fp8": "fp8"}

KERNEL_COLUMNS = (
    "kind",
    "kernel_source",
    "gemm_dtype",
    "m",
    "n",
    "k",
    "batch_size",
    "isl",
    "num_heads",
    "num_key_value_heads",
    "head_dim",
    "beam_width",
    "attn_dtype",
    "kv_cache_dtype",
    "step",
    "window_size",
    "op",
    "num_tokens",
    "hidden_size",
    "elements",
    "latency",
    "power",
    "power_limit",
    "energy_j",
    "calls",
    "window_s",
    "sm_clock_mhz",
    "sm_clock_locked_mhz",
    "temperature_c",
    "method",
    "gpu",
    "gpu_name",
    "driver",
    "cuda",
    "torch",
    "joulecast",
    "date",
)


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)


def row_fields(row: KernelRow, gpu: str, provenance: Provenance) -> dict[str, str]:
    """The CSV cells of ``row`` (empty where a column does not apply)."""
    s = row.shape
    cells: dict[str, str] = dict.fromkeys(KERNEL_COLUMNS, "")
    cells.update(kind=s.kind, kernel_source="joulecast_torch")
    if s.kind == GEMM:
        cells.update(gemm_dtype=GEMM_DTYPES[s.dtype], m=str(s.m), n=str(s.n), k=str(s.k))
    elif s.kind in (CONTEXT, GENERATION):
        cells.update(
            batch_size=str(s.batch),
            isl=str(s.length),
            num_heads=str(s.heads),
            num_key_value_heads=str(s.kv_heads),
            head_dim=str(s.head_dim),
            beam_width="1",
            attn_dtype="bfloat16",
            kv_cache_dtype="bfloat16",
            step="0",
            window_size="0",
        )
    elif s.kind == NORM:
        cells.update(op=s.op, num_tokens=str(s.tokens), hidden_size=str(s.hidden))
    else:
        cells.update(op=s.op, elements=str(s.elements))
    cells.update(
        latency=repr(row.latency_s * 1e3),
        power=repr(row.power_w),
        power_limit=_opt(row.power_limit_w),
        energy_j=repr(row.energy_j),
        calls=str(row.calls),
        window_s=repr(row.window_s),
        sm_clock_mhz=_opt(row.sm_clock_mhz),
        sm_clock_locked_mhz=_opt(row.locked_clock_mhz),
        temperature_c=_opt(row.temperature_c),
        method=row.method,
        gpu=gpu,
    )
    p = provenance.as_dict()
    cells.update({c: p[c] for c in ("gpu_name", "driver", "cuda", "torch", "joulecast", "date")})
    return cells


def write_table(path: Path, collection: Collection, gpu: str) -> int:
    """Write the collected rows to ``path`` (CSV, :data:`KERNEL_COLUMNS`); returns the count.

    Raises:
        MeasureError: no row was measured.
    """
    if not collection.rows or collection.provenance is None:
        raise MeasureError("no kernel could be measured: nothing written")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=KERNEL_COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in collection.rows:
            w.writerow(row_fields(row, gpu, collection.provenance))
    return len(collection.rows)
