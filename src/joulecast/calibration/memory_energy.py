"""Energy per byte streamed from HBM on Hopper, measured on H200 weight-streaming GEMMs.

The end-to-end calibration fixes the DRAM energy per byte on the A100-PCIe (HBM2, 7 nm). Scaling
it to Hopper by published HBM pJ/bit alone leaves out the on-chip path (HBM PHY, the two L2
partitions and their crossbar, the SM load path) of a larger, faster part, and it under-predicts
Hopper's memory-bound power: aiconfigurator's H200 weight-streaming GEMMs, ML.ENERGY's H100 decode
steps. This module measures that one number on Hopper itself:

* rows: the H200 bf16 GEMM table (aiconfigurator, NVML power), ``m <= 16`` (pure weight
  streaming: every byte of the weight matrix crosses HBM once, a few FLOPs per byte), power
  resting on >= 3 NVML samples (>= 0.1 ms per call) and below 97 % of the power limit (not held
  by the limiter);
* per row: dynamic energy = (measured power - idle(f_max)) x measured latency, minus the energy
  joulecast's transferred coefficients give every non-DRAM event (SM-cycles over the measured
  latency, tensor FLOPs), divided by the modelled DRAM bytes;
* the value: the median over rows. The rows split into two groups at the same bandwidth
  (about 4.1 TB/s): most read 600-690 W, the k = 65,536 shapes about 365 W. The median sits in
  the large group; the quartiles are stored beside it so the spread stays visible.

Only the Hopper and Blackwell HBM parts use the result (scaled between HBM generations by their
pJ/bit, :data:`joulecast.coefficients.transfer.DRAM_PJ_PER_BIT`). No H100 end-to-end measurement
is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from joulecast.coefficients.memory import MemoryEnergy
from joulecast.errors import CalibrationError

ANCHOR_TABLE = "h200 gemm bf16"
ANCHOR_GPU = "h200"
MAX_M = 16


def fit_memory_energy(data_dir: Path | None = None) -> MemoryEnergy:
    """Measure HBM energy per byte on the H200 weight-streaming GEMM rows (see module doc).

    Raises:
        CalibrationError: too few usable rows.
        DataNotFoundError: the aiconfigurator table is missing.
    """
    # Imported here: kernel_check imports the estimator, which reads this module's shipped value.
    from joulecast.calibration import kernel_check as kc
    from joulecast.coefficients.transfer import physics_coefficients
    from joulecast.hardware.spec import load_gpu
    from joulecast.power import FEATURES, coefficient_vector

    spec = load_gpu(ANCHOR_GPU)
    rows = kc.read_table(kc.table_by_name(ANCHOR_TABLE), data_dir)
    assert rows.power_w is not None
    keep = (rows.features["m"] <= MAX_M) & kc.unthrottled_reliable(rows)
    if keep.sum() < 10:
        raise CalibrationError(f"{ANCHOR_TABLE}: only {keep.sum()} weight-streaming rows usable")
    coeffs = physics_coefficients(spec)
    ev_row, idle = kc.events_at_measured_latency(rows, keep, spec, coeffs)
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
            f"aiconfigurator {ANCHOR_TABLE}: m <= {MAX_M}, >= 0.1 ms, "
            "< 97% of the power limit; median over rows"
        ),
    )
