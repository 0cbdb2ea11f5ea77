"""Shared interface of the attribution methods: names, model features, inputs and outputs.

A :class:`Method` maps one GPU's telemetry and its :class:`ModelInputs` to a :class:`MethodOutput`
(weights and static power); the registry (:mod:`~joulecast.mig.methods.registry`) names them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from joulecast.errors import TelemetryError, UnknownNameError
from joulecast.mig.frame import FIELD_INDEX, FloatArray, GpuTelemetry

MethodName = Literal[
    "slice", "kepler", "ceems", "activity", "prototype", "offline", "online", "online-raw"
]
METHOD_NAMES: tuple[str, ...] = (
    "slice",
    "kepler",
    "ceems",
    "activity",
    "prototype",
    "offline",
    "online",
    "online-raw",
)

#: Model features, in whole-GPU units (instance ratio x instance share of the GPU).
MODEL_FEATURES: tuple[str, ...] = ("tensor", "dram", "fp", "sm", "busy")

# Generic watts per unit of whole-GPU activity on a ~400 W A100 (scaled by TDP elsewhere). Used as
# the L2 offline model and as a last-resort prior; deliberately not workload-specific.
PRIOR_W_PER_UNIT: dict[str, float] = {
    "tensor": 220.0,
    "dram": 110.0,
    "fp": 140.0,
    "sm": 60.0,
    "busy": 0.0,
}

_ACTIVE_THRESHOLD = 0.05


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Features derived from one GPU's telemetry.

    Attributes:
        features: (T, N, K) whole-GPU-normalised features in :data:`MODEL_FEATURES` order.
        gract: (T, N) per-instance engine activity (GRACT, or SMACT when GRACT is missing).
        compute_share: (N,) compute slices / total slices.
        active: (T, N) instance busy (activity above a small threshold) and present.
        notes: Feature fallbacks applied.
    """

    features: FloatArray
    gract: FloatArray
    compute_share: FloatArray
    active: NDArray[np.bool_]
    notes: tuple[str, ...] = ()


def model_inputs(gpu: GpuTelemetry) -> ModelInputs:
    """Normalise per-instance ratios into whole-GPU features (reference §5.2)."""
    a = gpu.activity
    notes: list[str] = []
    share = np.array([i.profile.compute_fraction for i in gpu.instances])
    mem = np.array([i.profile.memory_fraction for i in gpu.instances])

    def col(name: str) -> FloatArray:
        return a[:, :, FIELD_INDEX[name]]

    gract = col("gract").copy()
    smact = col("smact").copy()
    # GR_ENGINE_ACTIVE is missing on some H100 stacks (DCGM #226): fall back per instance.
    for i in range(a.shape[1]):
        if np.isnan(gract[:, i]).all():
            gract[:, i] = smact[:, i]
        if np.isnan(smact[:, i]).all():
            smact[:, i] = gract[:, i]
    missing_any = [
        f"{inst.gpu_instance_id}"
        for i, inst in enumerate(gpu.instances)
        if np.isnan(gract[:, i]).all()
    ]
    if missing_any:
        notes.append(
            f"GPU {gpu.gpu_uuid}: no GRACT or SMACT for instance(s) {', '.join(missing_any)}"
        )
    fp = np.nansum(np.stack([col("fp64_active"), col("fp32_active"), col("fp16_active")]), axis=0)
    for name in ("tensor_active", "dram_active", "fp32_active"):
        if np.isnan(col(name)).all():
            notes.append(f"GPU {gpu.gpu_uuid}: {name} not measured; the model works without it")
    feats = np.stack(
        [
            np.nan_to_num(col("tensor_active")) * share,
            np.nan_to_num(col("dram_active")) * mem,
            np.minimum(fp, 1.0) * share,
            np.nan_to_num(smact) * share,
            # GRACT is a time fraction: an on/off indicator that lets each instance have an
            # offset when busy, which a purely proportional model lacks (concave power curves).
            np.nan_to_num(gract) * share,
        ],
        axis=2,
    )
    gract = np.nan_to_num(gract)
    active = (gract > _ACTIVE_THRESHOLD) & gpu.present
    return ModelInputs(
        features=feats, gract=gract, compute_share=share, active=active, notes=tuple(notes)
    )


@dataclass(frozen=True, eq=False)
class MethodOutput:
    """What a method hands to the engine.

    Attributes:
        weights: (T, N) non-negative weights; shares of dynamic power are weights / row sum.
        static_w: (T,) static (idle) power estimate per sample.
        static_source: How the static power was obtained.
        predicted_w: (T, N) modelled dynamic power in W when the method has one (else None).
        diagnostics: Method-specific diagnostics (JSON-serialisable).
        reconcile: Whether the engine scales weights to the measured total (False only for
            ``online-raw``, which exists to show what reconciliation buys).
    """

    weights: FloatArray
    static_w: FloatArray
    static_source: str
    predicted_w: FloatArray | None = None
    diagnostics: dict[str, object] = field(default_factory=dict)
    reconcile: bool = True


class Method(Protocol):
    """An attribution method."""

    def __call__(
        self, gpu: GpuTelemetry, inputs: ModelInputs, idle_power_w: float | None
    ) -> MethodOutput:
        """Compute weights and static power for one GPU."""
        ...


class UnknownMethodError(UnknownNameError, TelemetryError):
    """An attribution method name that is not in the registry.

    The message is one line that lists the known names (and close matches). It is a
    :class:`~joulecast.errors.TelemetryError` too, so callers that catch telemetry errors keep
    catching it.
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__("method", name, known)
