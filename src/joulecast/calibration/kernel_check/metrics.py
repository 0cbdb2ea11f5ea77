"""Accuracy summaries of the kernel check: relative errors, and the shape classes that locate them.

Errors are relative, in percent (:func:`error_stats`); :data:`SHAPE_CLASSES` splits each kind of
table into the shapes where its errors are read (GEMM ``m`` ranges, attention lengths, sliding
windows, fp8 KV caches).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from joulecast.calibration.kernel_check.tables import FloatArray
from joulecast.errors import CalibrationError


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
