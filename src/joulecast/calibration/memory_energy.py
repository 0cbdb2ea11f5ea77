"""Energy per byte streamed from HBM on Hopper, measured on H200 weight-streaming GEMMs.

The end-to-end calibration fixes the DRAM energy per byte on the A100-PCIe (HBM2, 7 nm). Scaling
it to Hopper by published HBM pJ/bit alone leaves out the on-chip path (HBM PHY, the two L2
partitions and their crossbar, the SM load path) of a larger, faster part, and it under-predicts
Hopper's memory-bound power: aiconfigurator's H200 weight-streaming GEMMs, ML.ENERGY's H100 decode
steps. This module measures that one number on Hopper itself:

* rows: the H200 bf16 GEMM table (aiconfigurator, NVML power), ``m <= 16`` (pure weight
  streaming: every byte of the weight matrix crosses HBM once, a few FLOPs per byte), power
  *settled* (:func:`power_settled`) and below 97 % of the power limit (not held by the limiter);
* per row: dynamic energy = (measured power - idle(f_max)) x measured latency, minus the energy
  joulecast's transferred coefficients give every non-DRAM event (SM-cycles over the measured
  latency, tensor FLOPs at the Hopper tensor energy, :mod:`joulecast.calibration.tensor_energy`),
  divided by the modelled DRAM bytes;
* the value: the median over rows; the quartiles are stored beside it.

Settled power. The table was measured shape after shape; NVML on Hopper reports power averaged
over the last second, so a call measured right after a short, low-power one (< 0.1 ms: its loop
ran 0.3 s) reads the previous call's power too. The rows split into two groups at the same
bandwidth (about 4.1 TB/s): 600-690 W, and about 365 W; every row of the low group follows a
short call (184 of 184), and of the large bf16 GEMMs (m >= 1024, >= 600 TFLOP/s) 98 % of those
following a short call read below the limit against 9 % of the others. A row counts when its own
call and the one before it both ran >= 0.1 ms.

Only the Hopper and Blackwell HBM parts use the result (scaled between HBM generations by their
pJ/bit, :data:`joulecast.coefficients.transfer.DRAM_PJ_PER_BIT`). No H100 end-to-end measurement
is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from joulecast.calibration.kernel_check.tables import KernelRows, power_reliable
from joulecast.coefficients.memory import MemoryEnergy
from joulecast.dvfs import DvfsCurve
from joulecast.errors import CalibrationError

ANCHOR_TABLE = "h200 gemm bf16"
ANCHOR_GPU = "h200"
MAX_M = 16


def power_settled(rows: KernelRows) -> NDArray[np.bool_]:
    """Rows whose measured power is the call's own: >= 3 NVML samples, and the call measured
    before it (file order) ran >= 0.1 ms too (module doc)."""
    ok = power_reliable(rows.latency_s)
    before = np.concatenate([[False], ok[:-1]])
    return np.asarray(ok & before)


def fit_memory_energy(
    data_dir: Path | None = None,
    tensor_pj_per_flop: float | None = None,
    curve: DvfsCurve | None = None,
) -> MemoryEnergy:
    """Measure HBM energy per byte on the H200 weight-streaming GEMM rows (see module doc).

    Args:
        data_dir: reference-data folder.
        tensor_pj_per_flop: tensor energy per FLOP to take off (default: the width-rule
            transfer of the A100 value).
        curve: the H200's V(f) and idle(f) (default: the shipped one).

    Raises:
        CalibrationError: too few usable rows.
        DataNotFoundError: the aiconfigurator table is missing.
    """
    # Imported here: kernel_check imports the estimator, which reads this module's shipped value.
    from joulecast.calibration import kernel_check as kc
    from joulecast.calibration.kernel_check.prediction import events_at
    from joulecast.calibration.tensor_energy import anchor_coefficients
    from joulecast.coefficients.transfer import physics_coefficients
    from joulecast.hardware.spec import load_gpu
    from joulecast.power import FEATURES, coefficient_vector

    spec = load_gpu(ANCHOR_GPU)
    rows = kc.read_table(kc.table_by_name(ANCHOR_TABLE), data_dir)
    assert rows.power_w is not None and rows.power_limit_w is not None
    uncapped = rows.power_w < kc.UNTHROTTLED_FRACTION * rows.power_limit_w
    keep = (rows.features["m"] <= MAX_M) & power_settled(rows) & uncapped
    if keep.sum() < 10:
        raise CalibrationError(f"{ANCHOR_TABLE}: only {keep.sum()} weight-streaming rows usable")
    physics = physics_coefficients(spec).power
    tensor = tensor_pj_per_flop if tensor_pj_per_flop is not None else physics.tensor_pj_per_flop
    coeffs = anchor_coefficients(spec, physics.dram_pj_per_byte, tensor)
    ev_row, idle, _ = events_at(rows, keep, spec, coeffs, curve=curve)
    latency = rows.latency_s[keep]
    dram_col = FEATURES.index("dram_pj_per_byte")
    cvec = coefficient_vector(coeffs.power)
    cvec[dram_col] = 0.0
    dynamic_j = (rows.power_w[keep] - idle) * latency - ev_row @ cvec
    per_byte = dynamic_j / ev_row[:, dram_col]  # events are J per pJ-coefficient
    n = int(keep.sum())
    p25, p50, p75 = np.percentile(per_byte, [25, 50, 75])
    return MemoryEnergy(
        gpu=spec.id,
        technology=str(spec.memory_technology),
        dram_pj_per_byte=round(float(p50), 2),
        p25_pj_per_byte=round(float(p25), 2),
        p75_pj_per_byte=round(float(p75), 2),
        rows=n,
        source=(
            f"aiconfigurator {ANCHOR_TABLE}: m <= {MAX_M}, >= 0.1 ms after a >= 0.1 ms call, "
            "< 97% of the power limit; median over rows"
        ),
    )
