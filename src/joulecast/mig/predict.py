"""Predictive mode: forecast per-partition power and energy of a planned MIG layout.

A partition gives either average activity fractions directly or a model workload; for a workload
the core estimator predicts the utilisation on the partition (:func:`estimate_partition`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from joulecast.errors import JoulecastError, WorkloadError
from joulecast.hardware.spec import GPUSpec
from joulecast.mig.methods import PRIOR_W_PER_UNIT
from joulecast.mig.profiles import parse_profile

ACTIVITY_KEYS: tuple[str, ...] = ("tensor", "dram", "sm", "fp32", "fp16", "fp64")
_REFERENCE_DYNAMIC_W = 340.0  # dynamic range of the ~400 W part the prior was scaled for


@dataclass(frozen=True)
class PlannedPartition:
    """One partition of a planned layout.

    Attributes:
        name: Tenant or job name.
        profile: MIG profile, e.g. ``3g.40gb``.
        activity: Average activity fractions in [0, 1], relative to the partition
            (keys from :data:`ACTIVITY_KEYS`; missing keys are 0).
        duration_s: How long the job runs.
    """

    name: str
    profile: str
    activity: Mapping[str, float]
    duration_s: float = 3600.0


@dataclass(frozen=True)
class PlannedLayout:
    """A planned MIG layout on one GPU.

    Attributes:
        gpu: GPU name (for the report).
        static_w: Board power with MIG on and idle.
        tdp_w: Board TDP; scales the generic watts-per-activity prior.
        partitions: The partitions.
        cap_w: Power cap if set below TDP (all partitions are compressed to fit it).
    """

    gpu: str
    static_w: float
    tdp_w: float
    partitions: tuple[PlannedPartition, ...]
    cap_w: float | None = None


@dataclass(frozen=True)
class PartitionForecast:
    """Forecast for one partition (static shared by reserved slices)."""

    name: str
    profile: str
    dynamic_power_w: float
    static_power_w: float
    duration_s: float

    @property
    def power_w(self) -> float:
        """Dynamic plus static power."""
        return self.dynamic_power_w + self.static_power_w

    @property
    def energy_j(self) -> float:
        """Energy over the partition's duration."""
        return self.power_w * self.duration_s


@dataclass(frozen=True)
class LayoutForecast:
    """Forecast of a layout."""

    gpu: str
    board_power_w: float
    cap_factor: float
    partitions: tuple[PartitionForecast, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "gpu": self.gpu,
            "board_power_w": self.board_power_w,
            "cap_factor": self.cap_factor,
            "partitions": [
                {
                    "name": p.name,
                    "profile": p.profile,
                    "dynamic_power_w": p.dynamic_power_w,
                    "static_power_w": p.static_power_w,
                    "power_w": p.power_w,
                    "duration_s": p.duration_s,
                    "energy_j": p.energy_j,
                }
                for p in self.partitions
            ],
        }


def predict(layout: PlannedLayout) -> LayoutForecast:
    """Forecast each partition's power from its planned activity.

    Uses the generic linear prior (scaled to the board's dynamic range) on whole-GPU-normalised
    activity, then compresses all partitions together if the sum exceeds the cap, as DVFS does.

    Args:
        layout: The planned layout.

    Returns:
        The forecast.

    Raises:
        WorkloadError: On activities outside [0, 1] or more slices than the GPU has.
    """
    profiles = [parse_profile(p.profile) for p in layout.partitions]
    if sum(p.compute_slices for p in profiles) > profiles[0].total_slices if profiles else False:
        raise WorkloadError("the planned partitions use more compute slices than the GPU has")
    scale = max(layout.tdp_w - layout.static_w, 1.0) / _REFERENCE_DYNAMIC_W
    dyn = []
    for part, prof in zip(layout.partitions, profiles, strict=True):
        bad = {k: v for k, v in part.activity.items() if k not in ACTIVITY_KEYS or not 0 <= v <= 1}
        if bad:
            raise WorkloadError(
                f"partition {part.name}: activities must be in [0, 1] with keys "
                f"{', '.join(ACTIVITY_KEYS)}; got {bad}"
            )
        a = {k: float(part.activity.get(k, 0.0)) for k in ACTIVITY_KEYS}
        s, m = prof.compute_fraction, prof.memory_fraction
        fp = min(a["fp32"] + a["fp16"] + a["fp64"], 1.0)
        watts = (
            PRIOR_W_PER_UNIT["tensor"] * a["tensor"] * s
            + PRIOR_W_PER_UNIT["dram"] * a["dram"] * m
            + PRIOR_W_PER_UNIT["fp"] * fp * s
            + PRIOR_W_PER_UNIT["sm"] * a["sm"] * s
        )
        dyn.append(watts * scale)
    d = np.array(dyn)
    budget = (layout.cap_w if layout.cap_w is not None else layout.tdp_w) - layout.static_w
    factor = min(1.0, budget / d.sum()) if d.sum() > 0 else 1.0
    d = d * factor
    total_slices = profiles[0].total_slices if profiles else 7
    parts = tuple(
        PartitionForecast(
            name=part.name,
            profile=part.profile,
            dynamic_power_w=float(d[k]),
            static_power_w=layout.static_w * prof.compute_slices / total_slices,
            duration_s=part.duration_s,
        )
        for k, (part, prof) in enumerate(zip(layout.partitions, profiles, strict=True))
    )
    return LayoutForecast(
        gpu=layout.gpu,
        board_power_w=float(layout.static_w + d.sum()),
        cap_factor=float(factor),
        partitions=parts,
    )


def partition_from_estimate(
    name: str, profile: str, estimate: Any, duration_s: float | None = None
) -> PlannedPartition:
    """Build a partition from a core-estimator result (``Estimate.activity``, ``time_s``).

    The estimator is duck-typed so this module never imports it.
    """
    activity = {k: float(v) for k, v in dict(estimate.activity).items() if k in ACTIVITY_KEYS}
    dur = duration_s if duration_s is not None else float(getattr(estimate, "time_s", 3600.0))
    return PlannedPartition(name=name, profile=profile, activity=activity, duration_s=dur)


def _from_mapping(doc: Mapping[str, Any]) -> PlannedLayout:
    try:
        gpu = str(doc.get("gpu", "a100-sxm4-80gb"))
        tdp = doc.get("tdp_w")
        if tdp is None:
            try:
                from joulecast.hardware import load_gpu

                tdp = load_gpu(gpu).tdp_w
            except JoulecastError:
                tdp = 400.0
        parts = []
        for k, p in enumerate(doc["partitions"]):
            name = str(p.get("name", f"partition{k}"))
            if "activity" in p:
                parts.append(
                    PlannedPartition(
                        name=name,
                        profile=str(p["profile"]),
                        activity={str(a): float(v) for a, v in p["activity"].items()},
                        duration_s=float(p.get("duration_s", 3600.0)),
                    )
                )
            elif "workload" in p:
                if not isinstance(p["workload"], Mapping):
                    raise WorkloadError(f"partition {name}: 'workload' must be a mapping")
                parts.append(
                    estimate_partition(
                        name,
                        str(p["profile"]),
                        p["workload"],
                        gpu,
                        float(p.get("duration_s", 3600.0)),
                    )
                )
            else:
                raise WorkloadError(f"partition {name}: give 'activity' (or 'workload')")
        return PlannedLayout(
            gpu=gpu,
            static_w=float(doc.get("static_w", 0.15 * float(tdp))),
            tdp_w=float(tdp),
            partitions=tuple(parts),
            cap_w=None if doc.get("cap_w") is None else float(doc["cap_w"]),
        )
    except JoulecastError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WorkloadError(f"bad layout file: {exc}") from None


_WORKLOAD_KEYS = ("model", "batch", "seq", "phase", "context", "precision", "attention")


def partition_spec(gpu: GPUSpec, profile: str) -> GPUSpec:
    """The GPU as one MIG partition sees it: SMs, throughput, bandwidth and memory cut down.

    Compute scales with the profile's compute slices, memory bandwidth, capacity and L2 with its
    memory share; clocks and power limits stay those of the board (they are shared).

    Args:
        gpu: Whole-GPU spec.
        profile: MIG profile name, e.g. ``3g.40gb``.

    Returns:
        A validated spec of the partition.
    """
    prof = parse_profile(profile)
    c, m = prof.compute_fraction, prof.memory_fraction
    doc = gpu.to_dict()
    doc.update(
        sm_count=max(1, round(gpu.sm_count * c)),
        tensor_tflops={k: v * c for k, v in gpu.tensor_tflops.items()},
        cuda_tflops={k: v * c for k, v in gpu.cuda_tflops.items()},
        memory_bandwidth_gb_s=gpu.memory_bandwidth_gb_s * m,
        memory_capacity_gb=gpu.memory_capacity_gb * m,
        l2_cache_mb=gpu.l2_cache_mb * m,
    )
    return GPUSpec(**doc)


def estimate_partition(
    name: str,
    profile: str,
    workload: Mapping[str, Any],
    gpu: str | GPUSpec,
    duration_s: float = 3600.0,
) -> PlannedPartition:
    """Plan a partition from a model workload with the core estimator.

    The workload (``model``, ``batch`` and optionally ``seq``, ``phase``, ``context``,
    ``precision``, ``attention``, as for ``joulecast estimate``) is built with
    :func:`joulecast.models.build.build_workload` and estimated on :func:`partition_spec`; the
    estimator's average utilisation over a pass is then the partition's planned activity.

    Args:
        name: Tenant or job name.
        profile: MIG profile.
        workload: Workload description.
        gpu: GPU id or spec.
        duration_s: How long the job runs.

    Returns:
        The planned partition.

    Raises:
        WorkloadError: On a bad workload description or a request that does not fit the
            partition's memory.
        JoulecastError: From the estimator (unknown model or GPU, impossible sizes).
    """
    from joulecast.estimator import estimate
    from joulecast.hardware.spec import resolve_gpu
    from joulecast.models.build import build_workload, memory_required_bytes

    unknown = sorted(set(workload) - set(_WORKLOAD_KEYS))
    if unknown or "model" not in workload or "batch" not in workload:
        raise WorkloadError(
            f"partition {name}: workload needs 'model' and 'batch' (optional: "
            f"{', '.join(_WORKLOAD_KEYS[2:])}); got {', '.join(map(str, workload)) or 'nothing'}"
        )
    spec = partition_spec(resolve_gpu(gpu), profile)
    try:
        kwargs: dict[str, Any] = {
            "batch": int(workload["batch"]),
            "seq": None if workload.get("seq") is None else int(workload["seq"]),
            "phase": str(workload.get("phase", "decode")),
            "context": None if workload.get("context") is None else int(workload["context"]),
            "precision": str(workload.get("precision", "bf16")),
            "attention": workload.get("attention"),
        }
    except (TypeError, ValueError) as exc:
        raise WorkloadError(f"partition {name}: bad workload value: {exc}") from None
    if kwargs["phase"] not in ("prefill", "decode"):
        raise WorkloadError(f"partition {name}: phase must be prefill or decode")
    model = str(workload["model"])
    need = memory_required_bytes(model, **kwargs)
    if need > spec.memory_capacity_bytes:
        raise WorkloadError(
            f"partition {name}: the workload needs {need / 1e9:.1f} GB but a {profile} "
            f"partition of {spec.id} has {spec.memory_capacity_gb:.1f} GB"
        )
    est = estimate(build_workload(model, **kwargs), spec, detail=False)
    return partition_from_estimate(name, profile, est, duration_s)


def load_layout(path: Path) -> PlannedLayout:
    """Read a planned layout from YAML or JSON.

    Raises:
        WorkloadError: If the file cannot be read as a layout.
    """
    from joulecast.yamlio import load_mapping

    return _from_mapping(load_mapping(path, "layout", WorkloadError))
