"""Calibrated coefficients of the time and power models (one small YAML file per GPU).

All coefficients are non-negative and in physical units. Energies per event are quoted at the
reference clock's supply voltage; the core-domain ones scale with (V/V_ref)², DRAM energy does not.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec

from joulecast.errors import CalibrationError
from joulecast.schema import NonNegativeFloat, PositiveFloat, to_builtins, validate
from joulecast.yamlio import dump_yaml, load_yaml_text

COEFF_VERSION = 1

Fraction = Annotated[float, msgspec.Meta(gt=0, le=1.0)]


class TimeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Time-model coefficients of the GPU (the host's are a :class:`joulecast.coefficients.Host`).

    Attributes:
        eta_tensor: fraction of pipe peak reached by GEMM-like kernels.
        eta_cuda: fraction of CUDA-core peak reached by other kernels.
        eta_dram: fraction of DRAM bandwidth reached.
        kernel_latency_cycles: fixed SM cycles per kernel. The smallest GEMMs of the
            aiconfigurator A100-SXM table run back to back in 2.45 µs at 1410 MHz (3,460
            cycles); the A10's free fit lands on 3,467. Not fitted: on the A100 set it trades off
            against host time.
        overlap_p: p-norm combining math and memory time (>= 1).
    """

    eta_tensor: Fraction = 0.75
    eta_cuda: Fraction = 0.6
    eta_dram: Fraction = 0.8
    kernel_latency_cycles: NonNegativeFloat = 3460.0
    overlap_p: Annotated[float, msgspec.Meta(ge=1.0)] = 4.0


class PowerParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Power-model coefficients (energy per event at the reference voltage).

    Attributes:
        busy_w: extra board power while any kernel runs.
        sm_pj_per_cycle: per active SM per cycle.
        tensor_pj_per_flop: bf16 tensor-core FLOP.
        cuda_pj_per_flop: CUDA-core FLOP.
        l2_pj_per_byte: per byte through L2.
        dram_pj_per_byte: per byte read or written in DRAM.
        element_pj: per element a pointwise or row-wise kernel processes.
        idle_offset_w: correction added to the idle(f) curve (may be negative).
    """

    busy_w: NonNegativeFloat = 20.0
    sm_pj_per_cycle: NonNegativeFloat = 20.0
    tensor_pj_per_flop: NonNegativeFloat = 0.5
    cuda_pj_per_flop: NonNegativeFloat = 3.0
    l2_pj_per_byte: NonNegativeFloat = 5.0
    dram_pj_per_byte: NonNegativeFloat = 30.0
    element_pj: NonNegativeFloat = 0.0
    idle_offset_w: float = 0.0


class GpuCoefficients(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the estimator needs beyond the spec for one GPU.

    Attributes:
        ref_clock_mhz: clock whose voltage the energies refer to.
    """

    version: int = COEFF_VERSION
    gpu: str
    ref_clock_mhz: PositiveFloat
    origin: str = "physics prior"
    fitted_on: list[str] = []
    time: TimeParams = TimeParams()
    power: PowerParams = PowerParams()

    def to_yaml(self) -> str:
        """Human-readable YAML of the coefficients."""
        return dump_yaml(to_builtins(self))


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
    except (OSError, ValueError) as exc:
        raise CalibrationError(
            f"cannot read coefficients {p.name}: {exc}".splitlines()[0]
        ) from None
    return validate(GpuCoefficients, data, f"coefficients {p.name}", CalibrationError)
