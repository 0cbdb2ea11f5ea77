"""Kernel-level accuracy: joulecast's kernel models against aiconfigurator's measured kernels.

The aiconfigurator tables (``<data>/aiconfigurator/``, described in the data README, section 3)
time tens of thousands of GEMM and attention shapes back to back on H100-SXM and A100-SXM, and
record latency plus NVML power of the same kernels on an H200. This package reads them, predicts
every row with joulecast's kernel models and power model as shipped, and reports latency, power
and energy errors. Three numbers come from these tables: for latency, the fused-attention cost
per CTA wave (a labelled subset of the H100 decode table, :mod:`joulecast.kernels.attention`);
for power, the Hopper HBM energy per byte, the median over the H200 bf16 GEMM rows with m <= 16
(:mod:`joulecast.calibration.memory_energy`), and the Hopper tensor energy per FLOP, the median
over the H200 bf16 GEMM rows with m >= 1024, capped calls included
(:mod:`joulecast.calibration.tensor_energy`).

Modules, each with its part of the protocol (also printed at the top of the report):

* :mod:`.tables`: the tables, reading them, and the rows whose measurements are trusted (rows,
  NVML power sampling).
* :mod:`.calls`: the joulecast ops one measured call runs (quantisation, KV-cache write).
* :mod:`.prediction`: the forecast of every row (what is compared, clock, coefficients).
* :mod:`.metrics`: relative errors and the shape classes that locate them.
* :mod:`.report`: the markdown report, docs/kernel-accuracy.md (latency and power subsets), and
  ``python -m joulecast.calibration.kernel_check``.

Every public name is re-exported here.
"""

from __future__ import annotations

from joulecast.calibration.kernel_check.calls import Kind, attention_ops, gemm_ops
from joulecast.calibration.kernel_check.metrics import (
    SHAPE_CLASSES,
    ClassFn,
    ErrorStats,
    error_stats,
)
from joulecast.calibration.kernel_check.prediction import (
    KernelPrediction,
    events_at,
    events_at_measured_latency,
    predict,
)
from joulecast.calibration.kernel_check.report import (
    KERNEL_MIN_LATENCY_S,
    LATENCY_BUCKETS_S,
    WORST_ROWS,
    kernel_report,
    main,
)
from joulecast.calibration.kernel_check.tables import (
    MAX_CALLS,
    NVML_PERIOD_S,
    POWER_MIN_LATENCY_S,
    SUBDIR,
    TABLES,
    UNTHROTTLED_FRACTION,
    FloatArray,
    KernelRows,
    KernelTable,
    collected_tables,
    describe_row,
    nvml_samples,
    power_reliable,
    read_table,
    subsample,
    table_by_name,
    unthrottled_reliable,
)

__all__ = [
    "KERNEL_MIN_LATENCY_S",
    "LATENCY_BUCKETS_S",
    "MAX_CALLS",
    "NVML_PERIOD_S",
    "POWER_MIN_LATENCY_S",
    "SHAPE_CLASSES",
    "SUBDIR",
    "TABLES",
    "UNTHROTTLED_FRACTION",
    "WORST_ROWS",
    "ClassFn",
    "ErrorStats",
    "FloatArray",
    "KernelPrediction",
    "KernelRows",
    "KernelTable",
    "Kind",
    "attention_ops",
    "collected_tables",
    "describe_row",
    "error_stats",
    "events_at",
    "events_at_measured_latency",
    "gemm_ops",
    "kernel_report",
    "main",
    "nvml_samples",
    "power_reliable",
    "predict",
    "read_table",
    "subsample",
    "table_by_name",
    "unthrottled_reliable",
]
