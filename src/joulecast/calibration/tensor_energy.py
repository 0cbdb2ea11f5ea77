"""Tensor-core energy per FLOP on Hopper, measured on large H200 bf16 GEMMs, capped calls included.

The A100 fit transfers to Hopper by process node and tensor datapath width (the width rule,
:func:`joulecast.coefficients.transfer.tensor_width_factor`). This module measures the number on
Hopper itself, from the H200 bf16 GEMM power table of aiconfigurator:

* **rows**: ``m >= 1024`` (compute-bound: tensor FLOPs carry most of the dynamic energy) whose
  power is *settled* (:func:`joulecast.calibration.memory_energy.power_settled`: >= 3 NVML
  samples, and the call measured before it also ran >= 0.1 ms). Most of them (about nine in
  ten) sit at the 700 W limit, held by the limiter at a clock nobody recorded.
* **clock**: an uncapped call (< 97 % of the limit) ran at the maximum clock. For a capped one
  the clock is solved from its measured latency: the time model's latency at clock ``f``, times
  the time model's own bias on the uncapped calls (median measured/modelled latency at the
  maximum clock), equals the measured latency. Power then pins the energy: the measured power is
  the regulated limit at that clock.
* **per row**: energy per FLOP = ((measured power − idle(f)) × latency − every other modelled
  event at ``f`` over the measured latency) / (FLOPs × (V(f)/V_floor)²), so the value refers to
  the floor voltage like the transferred coefficients (:func:`joulecast.coefficients.transfer.
  reference_clock_mhz`).
* **the value**: the median over rows, quartiles beside it; the width rule's value is stored
  for comparison, and the exponent of the datapath width that the measurement implies
  (A100 to Hopper, after the process-node factor): 1 is the width rule, 0 no width effect.
  Blackwell is carried from this Hopper value with that exponent
  (:func:`joulecast.coefficients.transfer.anchored_tensor_pj_per_flop`).

The HBM energy per byte enters the other events and is measured with this tensor energy taken
off (:mod:`joulecast.calibration.memory_energy`); :func:`fit_hopper_energies` alternates the two
until both settle (two rounds change them by < 0.1 %).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

from joulecast.calibration.kernel_check.prediction import events_at
from joulecast.calibration.kernel_check.tables import KernelRows
from joulecast.coefficients.memory import MemoryEnergy
from joulecast.coefficients.params import GpuCoefficients
from joulecast.coefficients.tensor import TensorEnergy
from joulecast.dvfs import DvfsCurve
from joulecast.errors import CalibrationError
from joulecast.hardware.spec import GPUSpec

FloatArray = NDArray[np.float64]

ANCHOR_TABLE = "h200 gemm bf16"
ANCHOR_GPU = "h200"
MIN_M = 1024
CAPPED_FRACTION = 0.97
ROUNDS = 4


def solved_clocks(
    rows: KernelRows, select: NDArray[np.bool_], spec: GPUSpec, t_model: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_], float]:
    """Clock of each selected row: the maximum where uncapped, solved from latency where capped.

    Returns:
        (clock per row in MHz, capped mask, the time model's bias on uncapped rows).
    """
    assert rows.power_w is not None and rows.power_limit_w is not None
    idx = np.flatnonzero(select)
    lat = rows.latency_s[idx]
    capped = rows.power_w[idx] >= CAPPED_FRACTION * rows.power_limit_w[idx]
    if (~capped).sum() < 10:
        raise CalibrationError(f"{rows.table.name}: too few uncapped rows to anchor the clock")
    bias = float(np.median(lat[~capped] / t_model[~capped, -1]))
    clocks = np.asarray(spec.supported_clocks_mhz(), dtype=np.float64)
    f = np.full(len(idx), clocks[-1])
    for j in np.flatnonzero(capped):
        t = bias * t_model[j]  # falls with the clock
        f[j] = float(np.interp(lat[j], t[::-1], clocks[::-1]))
    return f, capped, bias


def anchor_coefficients(
    spec: GPUSpec, dram_pj_per_byte: float, tensor_pj_per_flop: float
) -> GpuCoefficients:
    """The pure physics transfer to ``spec`` with the two Hopper energies replaced."""
    from joulecast.coefficients.transfer import physics_coefficients

    coeffs = physics_coefficients(spec)
    power = msgspec.structs.replace(
        coeffs.power, dram_pj_per_byte=dram_pj_per_byte, tensor_pj_per_flop=tensor_pj_per_flop
    )
    return msgspec.structs.replace(coeffs, power=power)


def fit_tensor_energy(
    data_dir: Path | None = None,
    dram_pj_per_byte: float | None = None,
    curve: DvfsCurve | None = None,
) -> TensorEnergy:
    """Measure bf16 tensor energy per FLOP on the large H200 GEMMs (see module doc).

    Args:
        data_dir: reference-data folder.
        dram_pj_per_byte: HBM energy per byte to take off (default: the width-rule transfer's
            pJ/bit scaling of the A100 value).
        curve: the H200's V(f) and idle(f) (default: the shipped one).

    Raises:
        CalibrationError: too few usable rows.
        DataNotFoundError: the aiconfigurator table is missing.
    """
    from joulecast.calibration import kernel_check as kc
    from joulecast.calibration.memory_energy import power_settled
    from joulecast.coefficients.transfer import (
        REFERENCE_GPU,
        physics_coefficients,
        tensor_width_factor,
    )
    from joulecast.hardware.spec import load_gpu
    from joulecast.power import FEATURES, coefficient_vector

    spec = load_gpu(ANCHOR_GPU)
    rows = kc.read_table(kc.table_by_name(ANCHOR_TABLE), data_dir)
    assert rows.power_w is not None
    keep = (rows.features["m"] >= MIN_M) & power_settled(rows)
    if keep.sum() < 100:
        raise CalibrationError(f"{ANCHOR_TABLE}: only {keep.sum()} large settled rows")
    physics = physics_coefficients(spec)
    dram = dram_pj_per_byte if dram_pj_per_byte is not None else physics.power.dram_pj_per_byte
    coeffs = anchor_coefficients(spec, dram, physics.power.tensor_pj_per_flop)
    _, _, t_model = events_at(rows, keep, spec, coeffs, curve=curve)
    clock, capped, _ = solved_clocks(rows, keep, spec, t_model)
    ev, idle, _ = events_at(rows, keep, spec, coeffs, clock, curve)
    tc = FEATURES.index("tensor_pj_per_flop")
    cvec = coefficient_vector(coeffs.power)
    cvec[tc] = 0.0
    lat = rows.latency_s[keep]
    dynamic_j = (rows.power_w[keep] - idle) * lat - ev @ cvec
    per_flop = dynamic_j / ev[:, tc]  # events are J per pJ-coefficient
    p25, p50, p75 = np.percentile(per_flop, [25, 50, 75])
    # The A100's value carried by process node alone, against the measured one: the datapath
    # width ratio to the power ``width_exponent`` is what remains (1 for the width rule).
    src = load_gpu(REFERENCE_GPU)
    node_only = physics.power.tensor_pj_per_flop / tensor_width_factor(src, spec)
    exponent = np.log(node_only / p50) / np.log(1.0 / tensor_width_factor(src, spec))
    return TensorEnergy(
        gpu=spec.id,
        tensor_pj_per_flop=round(float(p50), 4),
        p25_pj_per_flop=round(float(p25), 4),
        p75_pj_per_flop=round(float(p75), 4),
        width_rule_pj_per_flop=round(physics.power.tensor_pj_per_flop, 4),
        width_exponent=round(float(exponent), 3),
        rows=int(keep.sum()),
        capped_rows=int(capped.sum()),
        source=(
            f"aiconfigurator {ANCHOR_TABLE}: m >= {MIN_M}, >= 0.1 ms after a >= 0.1 ms call; "
            "capped calls at the clock their latency gives; median over rows"
        ),
    )


def fit_hopper_energies(
    data_dir: Path | None = None, curve: DvfsCurve | None = None
) -> tuple[MemoryEnergy, TensorEnergy]:
    """HBM energy per byte and tensor energy per FLOP on Hopper, each measured with the other
    taken off, alternated until both settle (``curve``: the H200's V(f) and idle(f), default
    the shipped one)."""
    from joulecast.calibration.memory_energy import fit_memory_energy

    tensor = fit_tensor_energy(data_dir, curve=curve)
    memory = fit_memory_energy(data_dir, tensor.tensor_pj_per_flop, curve)
    for _ in range(ROUNDS):
        previous = (memory.dram_pj_per_byte, tensor.tensor_pj_per_flop)
        tensor = fit_tensor_energy(data_dir, memory.dram_pj_per_byte, curve)
        memory = fit_memory_energy(data_dir, tensor.tensor_pj_per_flop, curve)
        if previous == (memory.dram_pj_per_byte, tensor.tensor_pj_per_flop):
            break
    return memory, tensor
