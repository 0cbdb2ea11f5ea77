"""GPU specifications: validated, frozen, loaded from one YAML file per part.

Every numeric field carries its unit in its name. Throughputs are dense (no structured sparsity)
and quoted at ``spec_clock_mhz``: the SM clock at which the datasheet's TFLOPS hold. Throughput at
another clock scales linearly with the clock.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from joulecast.errors import ClockError, SpecError, UnknownNameError
from joulecast.workload.ir import Precision


class MemoryTechnology(StrEnum):
    """DRAM technology; sets the default energy per byte moved off-chip."""

    HBM2 = "HBM2"
    HBM2E = "HBM2e"
    HBM3 = "HBM3"
    HBM3E = "HBM3e"
    GDDR6 = "GDDR6"
    GDDR6X = "GDDR6X"
    GDDR7 = "GDDR7"


class GPUSpec(BaseModel):
    """One GPU part. Construct with :func:`load_gpu` or :func:`gpu_from_file`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    architecture: str
    process_node_nm: float = Field(gt=0)
    sm_count: int = Field(gt=0)
    max_clock_mhz: float = Field(gt=0, description="highest SM clock the part supports")
    base_clock_mhz: float = Field(gt=0)
    min_clock_mhz: float = Field(gt=0, description="lowest lockable SM clock")
    clock_step_mhz: float = Field(gt=0, description="granularity of lockable SM clocks")
    spec_clock_mhz: float = Field(gt=0, description="clock at which the TFLOPS figures hold")
    tensor_tflops: dict[Precision, float] = Field(description="dense tensor-core TFLOPS")
    cuda_tflops: dict[Precision, float] = Field(description="CUDA-core (non-tensor) TFLOPS")
    memory_technology: MemoryTechnology
    memory_bandwidth_gb_s: float = Field(gt=0)
    memory_capacity_gb: float = Field(gt=0)
    memory_clock_mhz: float | None = Field(default=None, gt=0)
    l2_cache_mb: float = Field(gt=0)
    shared_memory_per_sm_kb: float = Field(gt=0)
    tdp_w: float = Field(gt=0)
    default_power_limit_w: float = Field(gt=0)
    min_power_limit_w: float = Field(gt=0)
    max_power_limit_w: float = Field(gt=0)
    idle_power_w: float = Field(gt=0, description="board power idle at the max clock")
    mig_slices: int = Field(default=0, ge=0, description="compute slices for MIG; 0 = no MIG")
    form_factor: str = "SXM"
    sources: list[str] = Field(default_factory=list)
    _hash: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any, /) -> None:
        # Specs key the per-shape cost caches, so hashing must be cheap and content-based.
        self._hash = hash(self.model_dump_json())

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GPUSpec):
            return NotImplemented
        return self._hash == other._hash and self.model_dump() == other.model_dump()

    @model_validator(mode="after")
    def _consistent(self) -> GPUSpec:
        problems: list[str] = []
        if not self.min_clock_mhz <= self.base_clock_mhz <= self.max_clock_mhz:
            problems.append("clocks must satisfy min <= base <= max")
        if not self.min_clock_mhz <= self.spec_clock_mhz <= self.max_clock_mhz:
            problems.append("spec_clock_mhz must lie within [min_clock_mhz, max_clock_mhz]")
        if Precision.FP32 not in self.cuda_tflops:
            problems.append("cuda_tflops needs an fp32 entry")
        for prec, value in {**self.tensor_tflops, **self.cuda_tflops}.items():
            if value <= 0:
                problems.append(f"throughput for {prec} must be positive")
        for prec, tc in self.tensor_tflops.items():
            cuda = self.cuda_tflops.get(prec, self.cuda_tflops.get(Precision.FP32, 0.0))
            if prec is not Precision.FP64 and tc < cuda:
                problems.append(
                    f"tensor {prec} throughput {tc} TFLOPS is below CUDA-core {cuda} TFLOPS"
                )
        if not self.min_power_limit_w <= self.default_power_limit_w <= self.max_power_limit_w:
            problems.append("power limits must satisfy min <= default <= max")
        if self.idle_power_w >= self.default_power_limit_w:
            problems.append("idle_power_w must be below the default power limit")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ---- derived quantities -------------------------------------------------------------
    def tensor_flops_per_s(self, precision: Precision, clock_mhz: float) -> float:
        """Dense tensor-core FLOP/s at ``clock_mhz`` (falls back to the nearest wider format)."""
        return self._tflops(self.tensor_tflops, precision) * 1e12 * clock_mhz / self.spec_clock_mhz

    def cuda_flops_per_s(self, precision: Precision, clock_mhz: float) -> float:
        """CUDA-core FLOP/s at ``clock_mhz``."""
        return self._tflops(self.cuda_tflops, precision) * 1e12 * clock_mhz / self.spec_clock_mhz

    def supports_tensor(self, precision: Precision) -> bool:
        """Whether the tensor cores run ``precision`` natively."""
        return precision in self.tensor_tflops

    @staticmethod
    def _tflops(table: dict[Precision, float], precision: Precision) -> float:
        if precision in table:
            return table[precision]
        for fallback in _WIDER.get(precision, ()):
            if fallback in table:
                return table[fallback]
        return table[Precision.FP32] if Precision.FP32 in table else min(table.values())

    @property
    def memory_bandwidth_b_s(self) -> float:
        return self.memory_bandwidth_gb_s * 1e9

    @property
    def memory_capacity_bytes(self) -> float:
        return self.memory_capacity_gb * 1e9

    @property
    def l2_cache_bytes(self) -> float:
        return self.l2_cache_mb * 1024 * 1024

    def supported_clocks_mhz(self) -> list[float]:
        """Lockable SM clocks from min to max in ``clock_step_mhz`` steps."""
        n = round((self.max_clock_mhz - self.min_clock_mhz) / self.clock_step_mhz)
        return [self.min_clock_mhz + i * self.clock_step_mhz for i in range(n + 1)]

    def check_clock(self, clock_mhz: float) -> float:
        """Return ``clock_mhz`` if the part can run at it, else raise a :class:`ClockError`."""
        if not self.min_clock_mhz <= clock_mhz <= self.max_clock_mhz:
            raise ClockError(
                f"{self.id} cannot run at {clock_mhz:g} MHz: valid SM clocks are "
                f"{self.min_clock_mhz:g}-{self.max_clock_mhz:g} MHz in {self.clock_step_mhz:g} MHz"
                " steps"
            )
        return clock_mhz

    def check_power_cap(self, power_cap_w: float, idle_power_w: float | None = None) -> float:
        """Return ``power_cap_w`` if within [idle, max limit], else raise a :class:`ClockError`."""
        floor = idle_power_w if idle_power_w is not None else self.idle_power_w
        if not floor < power_cap_w <= self.max_power_limit_w:
            raise ClockError(
                f"power cap {power_cap_w:g} W is outside {self.id}'s range: it must exceed the "
                f"idle power ({floor:.0f} W) and be at most {self.max_power_limit_w:g} W"
            )
        return power_cap_w

    def scaled(self, **changes: Any) -> GPUSpec:
        """A hypothetical variant with some fields replaced (validated again)."""
        data = self.model_dump()
        data.update(changes)
        return _validate(data, f"{self.id} variant")


_WIDER: dict[Precision, tuple[Precision, ...]] = {
    Precision.FP4: (Precision.FP8, Precision.INT8, Precision.FP16, Precision.BF16),
    Precision.FP8: (Precision.INT8, Precision.FP16, Precision.BF16),
    Precision.INT8: (Precision.FP8, Precision.FP16),
    Precision.FP16: (Precision.BF16,),
    Precision.BF16: (Precision.FP16,),
    Precision.TF32: (Precision.FP32,),
}


def _validate(data: dict[str, Any], origin: str) -> GPUSpec:
    try:
        return GPUSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "spec"
        raise SpecError(f"{origin}: {loc}: {first['msg']}") from None


def _gpu_dir() -> Any:
    return resources.files("joulecast.hardware") / "gpus"


@cache
def gpu_ids() -> tuple[str, ...]:
    """Ids of every GPU shipped with joulecast."""
    return tuple(
        sorted(
            p.name.removesuffix(".yaml") for p in _gpu_dir().iterdir() if p.name.endswith(".yaml")
        )
    )


_ALIASES = {
    "a100": "a100-pcie-40gb",
    "a100-pcie": "a100-pcie-40gb",
    "a100-sxm": "a100-sxm4-80gb",
    "a100-80gb": "a100-sxm4-80gb",
    "h100": "h100-sxm",
    "h100-sxm5": "h100-sxm",
    "h200-sxm": "h200",
    "b200-sxm": "b200",
}


@cache
def load_gpu(gpu_id: str) -> GPUSpec:
    """Load a shipped GPU spec by id (case-insensitive; a few short aliases are accepted)."""
    key = gpu_id.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in gpu_ids():
        raise UnknownNameError("GPU", gpu_id, gpu_ids())
    text = (_gpu_dir() / f"{key}.yaml").read_text()
    return _validate(yaml.safe_load(text), f"{key}.yaml")


def gpu_from_file(path: str | Path) -> GPUSpec:
    """Load a user's spec file (YAML or JSON). ``base: <id>`` inherits a shipped part's fields."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"GPU spec file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{p.name}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{p.name}: expected a mapping of spec fields")
    base = data.pop("base", None)
    if base is not None:
        merged = load_gpu(str(base)).model_dump()
        merged.update(data)
        data = merged
    data.setdefault("id", p.stem)
    return _validate(data, p.name)


def resolve_gpu(gpu: str | GPUSpec) -> GPUSpec:
    """Accept a spec, a shipped id, or a path to a spec file."""
    if isinstance(gpu, GPUSpec):
        return gpu
    if gpu.endswith((".yaml", ".yml", ".json")):
        return gpu_from_file(gpu)
    return load_gpu(gpu)
