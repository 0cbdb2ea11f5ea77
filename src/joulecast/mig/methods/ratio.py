"""Fixed-weight methods: slice, utilisation-ratio and generic-coefficient splits (L0 to L2).

Each weights the instances by a fixed formula of slices and activity counters (no fitting on the
board power); the engine scales the weights to the measured dynamic power. Static power is the
given idle power or the all-idle floor.
"""

from __future__ import annotations

import numpy as np

from joulecast.mig.frame import FIELD_INDEX, FloatArray, GpuTelemetry
from joulecast.mig.methods.base import (
    MODEL_FEATURES,
    PRIOR_W_PER_UNIT,
    MethodOutput,
    ModelInputs,
)
from joulecast.mig.methods.static import estimate_idle_floor


def _static(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> tuple[FloatArray, str]:
    n_t = gpu.time_s.size
    if idle_power_w is not None:
        return np.full(n_t, idle_power_w), "given"
    value, source = estimate_idle_floor(gpu, inputs)
    return np.full(n_t, value), source


def slice_split(gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None) -> MethodOutput:
    """L0: split by compute slices among present instances; needs no activity."""
    static, source = _static(gpu, inputs, idle_power_w)
    w = np.where(gpu.present, inputs.compute_share[None, :], 0.0)
    return MethodOutput(weights=w, static_w=static, static_source=source)


def kepler_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """Kepler 2026: raw GR_ENGINE_ACTIVE ratio, not weighted by slices."""
    static, source = _static(gpu, inputs, idle_power_w)
    return MethodOutput(weights=inputs.gract * gpu.present, static_w=static, static_source=source)


def ceems_split(gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None) -> MethodOutput:
    """CEEMS: slices x SM_ACTIVE x SM_OCCUPANCY (applied to dynamic power, same idle as others)."""
    static, source = _static(gpu, inputs, idle_power_w)
    a = gpu.activity
    smact = np.nan_to_num(a[:, :, FIELD_INDEX["smact"]], nan=0.0)
    smocc = a[:, :, FIELD_INDEX["smocc"]]
    smocc = np.where(np.isnan(smocc), 1.0, smocc)
    w = inputs.compute_share[None, :] * smact * smocc
    return MethodOutput(weights=w, static_w=static, static_source=source)


def activity_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """L1: slice-weighted GRACT ratio."""
    static, source = _static(gpu, inputs, idle_power_w)
    w = inputs.compute_share[None, :] * inputs.gract
    return MethodOutput(weights=w, static_w=static, static_source=source)


def prototype_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """The dcgm-exporter prototype of a paper co-author: fixed weights x slices x SM terms."""
    static, source = _static(gpu, inputs, idle_power_w)
    a = np.nan_to_num(gpu.activity)
    ix = FIELD_INDEX
    score = (
        0.338 * a[:, :, ix["tensor_active"]]
        + 0.152 * a[:, :, ix["dram_active"]]
        + 0.17
        * (a[:, :, ix["fp64_active"]] + a[:, :, ix["fp32_active"]] + a[:, :, ix["fp16_active"]])
    )
    w = score * inputs.compute_share[None, :] * a[:, :, ix["smact"]] * a[:, :, ix["smocc"]]
    return MethodOutput(weights=w, static_w=static, static_source=source)


def offline_split(
    gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
) -> MethodOutput:
    """L2: a generic offline linear model (same coefficients for every workload)."""
    static, source = _static(gpu, inputs, idle_power_w)
    beta = np.array([PRIOR_W_PER_UNIT[f] for f in MODEL_FEATURES])
    pred = inputs.features @ beta
    return MethodOutput(weights=pred, static_w=static, static_source=source, predicted_w=pred)
