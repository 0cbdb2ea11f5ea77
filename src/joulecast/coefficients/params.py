"""Calibrated coefficients of the time and power models (one small YAML file per GPU).

All coefficients are non-negative and in physical units. Energies per event are quoted at the
reference clock's supply voltage; the core-domain ones scale with (V/V_ref)², DRAM energy does not.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulecast.errors import CalibrationError
from joulecast.yamlio import dump_yaml, load_yaml_text

COEFF_VERSION = 1


class TimeParams(BaseModel):
    """Time-model coefficients."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eta_tensor: float = Field(
        0.75, gt=0, le=1.0, description="fraction of pipe peak reached by GEMM-like kernels"
    )
    eta_cuda: float = Field(
        0.6, gt=0, le=1.0, description="fraction of CUDA-core peak reached by other kernels"
    )
    eta_dram: float = Field(0.8, gt=0, le=1.0, description="fraction of DRAM bandwidth reached")
    # The smallest GEMMs of the aiconfigurator A100-SXM table run back to back in 2.45 µs at
    # 1410 MHz (3,460 cycles); the A10's free fit lands on 3,467. Not fitted: on the A100 set it
    # trades off against host time.
    kernel_latency_cycles: float = Field(3460.0, ge=0, description="fixed SM cycles per kernel")
    host_op_s: float = Field(1.5e-5, ge=0, description="host time per functional op")
    host_gemm_s: float = Field(3e-5, ge=0, description="host time per GEMM/conv/attention op")
    pass_overhead_s: float = Field(1e-4, ge=0, description="fixed host time per forward pass")
    overlap_p: float = Field(4.0, ge=1.0, description="p-norm combining math and memory time")


class PowerParams(BaseModel):
    """Power-model coefficients (energy per event at the reference voltage)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    busy_w: float = Field(20.0, ge=0, description="extra board power while any kernel runs")
    sm_pj_per_cycle: float = Field(20.0, ge=0, description="per active SM per cycle")
    tensor_pj_per_flop: float = Field(0.5, ge=0, description="bf16 tensor-core FLOP")
    cuda_pj_per_flop: float = Field(3.0, ge=0, description="CUDA-core FLOP")
    l2_pj_per_byte: float = Field(5.0, ge=0)
    dram_pj_per_byte: float = Field(30.0, ge=0)
    element_pj: float = Field(
        0.0, ge=0, description="per element a pointwise or row-wise kernel processes"
    )
    idle_offset_w: float = Field(0.0, description="correction added to the idle(f) curve")


class GpuCoefficients(BaseModel):
    """Everything the estimator needs beyond the spec for one GPU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = COEFF_VERSION
    gpu: str
    ref_clock_mhz: float = Field(gt=0, description="clock whose voltage the energies refer to")
    origin: str = "physics prior"
    fitted_on: list[str] = Field(default_factory=list)
    time: TimeParams = TimeParams()
    power: PowerParams = PowerParams()

    def to_yaml(self) -> str:
        """Human-readable YAML of the coefficients."""
        return dump_yaml(self.model_dump(mode="json"))


def _coeff_dir() -> Path:
    return Path(str(resources.files("joulecast.coefficients") / "data"))


@cache
def shipped_coefficients(gpu_id: str) -> GpuCoefficients | None:
    """The committed, fitted coefficients of ``gpu_id``, if any."""
    path = _coeff_dir() / f"{gpu_id}.yaml"
    if not path.is_file():
        return None
    return read_coefficients(path)


def read_coefficients(path: str | Path) -> GpuCoefficients:
    """Read a coefficient file written by ``joulecast calibrate``."""
    p = Path(path)
    try:
        data = load_yaml_text(p.read_text(encoding="utf-8"))
        return GpuCoefficients.model_validate(data)
    except (OSError, ValueError, ValidationError) as exc:
        raise CalibrationError(
            f"cannot read coefficients {p.name}: {exc}".splitlines()[0]
        ) from None
