"""GPU specifications: validated, frozen, loaded from one YAML file per part.

Every numeric field carries its unit in its name. Throughputs are dense (no structured sparsity)
and quoted at ``spec_clock_mhz``: the SM clock at which the datasheet's TFLOPS hold. Throughput at
another clock scales linearly with the clock.
"""

from __future__ import annotations

import math
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from joulecast.errors import ClockError, UnknownNameError
from joulecast.schema import to_builtins, validate
from joulecast.workload.ir import Precision
from joulecast.yamlio import load_mapping, load_yaml_text

# ---- physical bounds of a part, hypothetical ones included ---------------------------------
# Generous (about 100x beyond today's parts either way) but finite: every figure a spec file
# gives keeps an estimate far inside float64, and the clock grid short enough to sweep.
MIN_CLOCK_MHZ, MAX_CLOCK_MHZ = 1.0, 100_000.0  # SM and memory clocks (today: 0.2-2.5 GHz)
MAX_SUPPORTED_CLOCKS = 10_000  # lockable SM clocks from min to max (shipped parts: 80-150)
MAX_SM_COUNT = 100_000  # B200: 148
MIN_TFLOPS, MAX_TFLOPS = 1e-3, 1e6  # per format (A10 fp64: 0.98; B200 dense fp4: 9,000)
MIN_BANDWIDTH_GB_S, MAX_BANDWIDTH_GB_S = 1.0, 1e6  # (A10: 600 GB/s; B200: 8,000 GB/s)
MIN_MEMORY_GB, MAX_MEMORY_GB = 0.01, 1e6  # device memory (A10: 24 GB; B200: 180 GB)
MIN_CACHE_MB, MAX_CACHE_MB = 0.01, 1e6  # L2 in MB (6-126); shared memory per SM in KB too
MIN_POWER_W, MAX_POWER_W = 1.0, 1e6  # every power figure (B200 TDP: 1,000 W)
MIN_PROCESS_NODE_NM, MAX_PROCESS_NODE_NM = 0.1, 1e4  # (shipped: 4-8 nm)
MAX_MIG_SLICES = 64  # shipped: 7


def _between(low: float, high: float) -> Any:
    return msgspec.Meta(ge=low, le=high)


Clock = Annotated[float, _between(MIN_CLOCK_MHZ, MAX_CLOCK_MHZ)]
Watts = Annotated[float, _between(MIN_POWER_W, MAX_POWER_W)]
Cache = Annotated[float, _between(MIN_CACHE_MB, MAX_CACHE_MB)]


class MemoryTechnology(StrEnum):
    """DRAM technology; sets the default energy per byte moved off-chip."""

    HBM2 = "HBM2"
    HBM2E = "HBM2e"
    HBM3 = "HBM3"
    HBM3E = "HBM3e"
    GDDR6 = "GDDR6"
    GDDR6X = "GDDR6X"
    GDDR7 = "GDDR7"


class Architecture(StrEnum):
    """GPU generation; selects the micro-architectural constants of the kernel models."""

    AMPERE = "ampere"
    ADA = "ada"
    HOPPER = "hopper"
    BLACKWELL = "blackwell"


class Interconnect(StrEnum):
    """GPU-to-GPU link of a multi-GPU server (PCIe Gen4 x16 figures by default)."""

    NVSWITCH = "nvswitch"
    NVLINK_BRIDGE = "nvlink-bridge"
    PCIE = "pcie"


class GPUSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One GPU part. Construct with :func:`load_gpu` or :func:`gpu_from_file`.

    Attributes:
        max_clock_mhz: highest SM clock the part supports.
        min_clock_mhz: lowest lockable SM clock.
        clock_step_mhz: granularity of lockable SM clocks.
        spec_clock_mhz: clock at which the TFLOPS figures hold.
        tensor_tflops: dense tensor-core TFLOPS per precision.
        cuda_tflops: CUDA-core (non-tensor) TFLOPS per precision.
        idle_power_w: board power idle at the max clock.
        mig_slices: compute slices for MIG; 0 = no MIG.
        interconnect: how the part talks to its peers in a multi-GPU server (nvswitch,
            nvlink-bridge, pcie). Optional: a spec without it is a PCIe card.
        interconnect_bandwidth_gb_s: peak GPU-to-GPU bandwidth per GPU and direction.
        interconnect_latency_us: fixed time of one collective (NCCL's launch and handshake).
        interconnect_pj_per_bit: energy per bit carried over the link, both ends.
    """

    id: str
    name: str
    architecture: Architecture
    process_node_nm: Annotated[float, _between(MIN_PROCESS_NODE_NM, MAX_PROCESS_NODE_NM)]
    sm_count: Annotated[int, msgspec.Meta(gt=0, le=MAX_SM_COUNT)]
    max_clock_mhz: Clock
    base_clock_mhz: Clock
    min_clock_mhz: Clock
    clock_step_mhz: Annotated[float, msgspec.Meta(gt=0, le=MAX_CLOCK_MHZ)]
    spec_clock_mhz: Clock
    tensor_tflops: dict[Precision, float]
    cuda_tflops: dict[Precision, float]
    memory_technology: MemoryTechnology
    memory_bandwidth_gb_s: Annotated[float, _between(MIN_BANDWIDTH_GB_S, MAX_BANDWIDTH_GB_S)]
    memory_capacity_gb: Annotated[float, _between(MIN_MEMORY_GB, MAX_MEMORY_GB)]
    l2_cache_mb: Cache
    shared_memory_per_sm_kb: Cache
    tdp_w: Watts
    default_power_limit_w: Watts
    min_power_limit_w: Watts
    max_power_limit_w: Watts
    idle_power_w: Watts
    memory_clock_mhz: Clock | None = None
    mig_slices: Annotated[int, msgspec.Meta(ge=0, le=MAX_MIG_SLICES)] = 0
    form_factor: str = "SXM"
    interconnect: Interconnect = Interconnect.PCIE
    interconnect_bandwidth_gb_s: Annotated[float, msgspec.Meta(gt=0, le=MAX_BANDWIDTH_GB_S)] = 32.0
    interconnect_latency_us: Annotated[float, msgspec.Meta(gt=0, le=1e6)] = 10.0
    interconnect_pj_per_bit: Annotated[float, msgspec.Meta(ge=0, le=1e4)] = 5.0
    sources: list[str] = []

    def __hash__(self) -> int:
        # Specs key the per-shape cost caches: a content hash (the tables are dicts).
        return hash(
            tuple(
                tuple(sorted(v.items()))
                if isinstance(v, dict)
                else tuple(v)
                if isinstance(v, list)
                else v
                for v in msgspec.structs.astuple(self)
            )
        )

    def __post_init__(self) -> None:
        problems = [
            *self._clock_problems(),
            *self._throughput_problems(),
            *self._memory_problems(),
            *self._power_problems(),
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain data of the spec (the shipped YAML's fields; enums as strings)."""
        return to_builtins(self)

    def _clock_problems(self) -> list[str]:
        out: list[str] = []
        lo, base, hi = self.min_clock_mhz, self.base_clock_mhz, self.max_clock_mhz
        if not lo <= base <= hi:
            out.append(
                f"clocks must satisfy min_clock_mhz ({lo:g}) <= base_clock_mhz ({base:g}) <= "
                f"max_clock_mhz ({hi:g})"
            )
        if not lo <= self.spec_clock_mhz <= hi:
            out.append(
                f"spec_clock_mhz ({self.spec_clock_mhz:g}) must lie within [min_clock_mhz, "
                f"max_clock_mhz] = [{lo:g}, {hi:g}]"
            )
        steps = (hi - lo) / self.clock_step_mhz
        if steps >= MAX_SUPPORTED_CLOCKS:
            out.append(
                f"the clock grid min_clock_mhz..max_clock_mhz in clock_step_mhz steps has "
                f"{steps + 1:,.0f} clocks; at most {MAX_SUPPORTED_CLOCKS:,} are supported "
                "(raise clock_step_mhz)"
            )
        elif hi >= lo and abs(steps - round(steps)) > _GRID_TOLERANCE:
            out.append(
                f"max_clock_mhz - min_clock_mhz ({hi - lo:g}) must be a whole number of "
                f"clock_step_mhz ({self.clock_step_mhz:g})"
            )
        return out

    def _throughput_problems(self) -> list[str]:
        out: list[str] = []
        tensor, cuda = self.tensor_tflops, self.cuda_tflops
        if Precision.FP32 not in cuda:
            out.append("cuda_tflops needs an fp32 entry")
        if not tensor:
            out.append("tensor_tflops needs at least one entry (e.g. bf16)")
        for table_name, table in (("tensor_tflops", tensor), ("cuda_tflops", cuda)):
            out += [
                f"{table_name}.{prec} must be positive (got {value:g})"
                for prec, value in table.items()
                if value <= 0
            ]
            out += [
                f"{table_name}.{prec} must lie within [{MIN_TFLOPS:g}, {MAX_TFLOPS:,.0f}] TFLOPS "
                f"(got {value:g})"
                for prec, value in table.items()
                if value > 0 and not MIN_TFLOPS <= value <= MAX_TFLOPS
            ]
        for prec, tc in tensor.items():
            # Tensor cores exist to beat the CUDA cores: compare with the same format, or with
            # fp32 CUDA cores for formats the CUDA cores lack (fp64 only against fp64).
            ref = prec if prec in cuda or prec is Precision.FP64 else Precision.FP32
            if ref in cuda and tc < cuda[ref]:
                out.append(
                    f"tensor {prec} throughput {tc:g} TFLOPS is below CUDA-core {cuda[ref]:g} "
                    f"TFLOPS (tensor_tflops.{prec} < cuda_tflops.{ref})"
                )
        # A narrower format never runs slower on the same tensor cores.
        for narrow, value in tensor.items():
            rank = _TENSOR_WIDTH_RANK.get(narrow)
            if rank is None:
                continue
            wider = [p for p in tensor if _TENSOR_WIDTH_RANK.get(p, rank) < rank]
            if wider:
                fastest = max(wider, key=lambda p: tensor[p])
                if value < tensor[fastest]:
                    out.append(
                        f"tensor_tflops.{narrow} ({value:g}) is below tensor_tflops.{fastest} "
                        f"({tensor[fastest]:g}): a narrower format cannot be slower"
                    )
        fp64, fp32 = cuda.get(Precision.FP64), cuda.get(Precision.FP32)
        if fp64 is not None and fp32 is not None and fp64 > fp32:
            out.append(f"cuda_tflops.fp64 ({fp64:g}) exceeds cuda_tflops.fp32 ({fp32:g})")
        return out

    def _memory_problems(self) -> list[str]:
        if self.l2_cache_mb * 1024 * 1024 >= self.memory_capacity_gb * 1e9:
            return [
                f"l2_cache_mb ({self.l2_cache_mb:g} MB) must be smaller than memory_capacity_gb "
                f"({self.memory_capacity_gb:g} GB)"
            ]
        return []

    def _power_problems(self) -> list[str]:
        out: list[str] = []
        lo, default, hi = self.min_power_limit_w, self.default_power_limit_w, self.max_power_limit_w
        if not lo <= default <= hi:
            out.append(
                f"power limits must satisfy min_power_limit_w ({lo:g}) <= default_power_limit_w "
                f"({default:g}) <= max_power_limit_w ({hi:g})"
            )
        if self.idle_power_w >= lo:
            out.append(
                f"idle_power_w ({self.idle_power_w:g}) must be below min_power_limit_w ({lo:g}): "
                "a power limit at or below idle cannot be held"
            )
        if self.idle_power_w >= self.tdp_w:
            out.append(f"idle_power_w ({self.idle_power_w:g}) must be below tdp_w ({self.tdp_w:g})")
        return out

    # ---- derived quantities -------------------------------------------------------------
    def tensor_flops_per_s(self, precision: Precision, clock_mhz: float) -> float:
        """Dense tensor-core FLOP/s at ``clock_mhz`` (falls back to the nearest wider format)."""
        return self._tflops(self.tensor_tflops, precision) * 1e12 * clock_mhz / self.spec_clock_mhz

    def cuda_flops_per_s(self, precision: Precision, clock_mhz: float) -> float:
        """CUDA-core FLOP/s at ``clock_mhz``."""
        return self._tflops(self.cuda_tflops, precision) * 1e12 * clock_mhz / self.spec_clock_mhz

    def tensor_flops_per_clk_per_sm(self) -> float:
        """Dense bf16 (else fp16) tensor FLOPs one SM completes per clock: the width of its
        tensor datapath (A10 1,024, A100 2,048, H100 4,096)."""
        per_s = self.tensor_flops_per_s(Precision.BF16, self.spec_clock_mhz)
        return per_s / (self.sm_count * self.spec_clock_mhz * 1e6)

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
        """Return ``clock_mhz`` if the part can be locked at it, else raise a :class:`ClockError`.

        A supported clock lies in [``min_clock_mhz``, ``max_clock_mhz``] on the
        ``clock_step_mhz`` grid; the error names the valid range and step (and the nearest
        supported clocks when the value is in range but off the grid).
        """
        lo, hi, step = self.min_clock_mhz, self.max_clock_mhz, self.clock_step_mhz
        valid = f"valid SM clocks are {lo:g}-{hi:g} MHz in {step:g} MHz steps"
        if not lo <= clock_mhz <= hi:
            raise ClockError(f"{self.id} cannot run at {clock_mhz:g} MHz: {valid}")
        steps = (clock_mhz - lo) / step
        if abs(steps - round(steps)) > _GRID_TOLERANCE:
            below = lo + math.floor(steps) * step
            raise ClockError(
                f"{self.id} cannot run at {clock_mhz:g} MHz: {valid} "
                f"(nearest: {below:g} or {below + step:g} MHz)"
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

    def check_power_limit(self, power_cap_w: float) -> float:
        """Return ``power_cap_w`` if the part accepts it as its power limit, else raise a
        :class:`ClockError`.

        The settable range is [``min_power_limit_w``, ``max_power_limit_w``], as ``nvidia-smi
        -pl`` enforces it; :meth:`check_power_cap` is the wider range the power model can
        evaluate (down to idle), which the command line does not offer.
        """
        lo, hi = self.min_power_limit_w, self.max_power_limit_w
        if not lo <= power_cap_w <= hi:
            raise ClockError(
                f"power cap {power_cap_w:g} W is outside {self.id}'s power limits: "
                f"{lo:g}-{hi:g} W (min_power_limit_w to max_power_limit_w)"
            )
        return power_cap_w

    def scaled(self, **changes: Any) -> GPUSpec:
        """A hypothetical variant with some fields replaced (validated again)."""
        data = self.to_dict()
        data.update(changes)
        return _validate(data, f"{self.id} variant")


_GRID_TOLERANCE = 1e-6  # in clock steps: how far a clock may sit from the lockable grid

# Operand width order of tensor-core formats (wider first); equal ranks are not compared.
_TENSOR_WIDTH_RANK: dict[Precision, int] = {
    Precision.FP64: 0,
    Precision.FP32: 1,
    Precision.TF32: 1,
    Precision.BF16: 2,
    Precision.FP16: 2,
    Precision.FP8: 3,
    Precision.INT8: 3,
    Precision.FP4: 4,
}

_WIDER: dict[Precision, tuple[Precision, ...]] = {
    Precision.FP4: (Precision.FP8, Precision.INT8, Precision.FP16, Precision.BF16),
    Precision.FP8: (Precision.INT8, Precision.FP16, Precision.BF16),
    Precision.INT8: (Precision.FP8, Precision.FP16),
    Precision.FP16: (Precision.BF16,),
    Precision.BF16: (Precision.FP16,),
    Precision.TF32: (Precision.FP32,),
}


def _validate(data: dict[str, Any], origin: str) -> GPUSpec:
    arch = data.get("architecture")
    if isinstance(arch, str):  # generations are matched case-insensitively
        data = {**data, "architecture": arch.strip().lower()}
    return validate(GPUSpec, data, origin)


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
    text = (_gpu_dir() / f"{key}.yaml").read_text(encoding="utf-8")
    return _validate(load_yaml_text(text), f"{key}.yaml")


def gpu_from_file(path: str | Path) -> GPUSpec:
    """Load a user's spec file (YAML or JSON). ``base: <id>`` inherits a shipped part's fields."""
    p = Path(path)
    data = load_mapping(p, "GPU spec file")
    base = data.pop("base", None)
    if base is not None:
        merged = load_gpu(str(base)).to_dict()
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
