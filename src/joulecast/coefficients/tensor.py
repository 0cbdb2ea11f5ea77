"""Tensor-core energy per FLOP, as measured on Hopper kernels and shipped with the package.

The measurement itself (which rows, how the clock of a power-capped call is solved) lives in
:mod:`joulecast.calibration.tensor_energy`; this module only reads its shipped result at run
time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

from joulecast.coefficients.memory import read_shipped
from joulecast.yamlio import dump_yaml

FILE_NAME = "tensor_energy.yaml"


@dataclass(frozen=True)
class TensorEnergy:
    """Measured energy per bf16 tensor-core FLOP on one part, at its floor voltage.

    Attributes:
        gpu: part the rows were measured on.
        tensor_pj_per_flop: median over rows (pJ per dense bf16 FLOP at the floor voltage).
        p25_pj_per_flop: lower quartile over rows.
        p75_pj_per_flop: upper quartile over rows.
        width_rule_pj_per_flop: what the A100 fit transfers by process node and tensor
            datapath width, for comparison.
        width_exponent: the A100-to-Hopper width ratio's exponent the measurement implies
            (energy per FLOP ∝ width^-exponent after the process-node factor; 1 is the width
            rule); used to carry the value to wider datapaths.
        rows: rows used.
        capped_rows: of which held by the power limiter (clock solved, not known).
        source: table and selection.
    """

    gpu: str
    tensor_pj_per_flop: float
    p25_pj_per_flop: float
    p75_pj_per_flop: float
    width_rule_pj_per_flop: float
    width_exponent: float
    rows: int
    capped_rows: int
    source: str

    def to_yaml(self) -> str:
        """YAML of the measurement, as shipped."""
        return dump_yaml(asdict(self))


@cache
def shipped_tensor_energy() -> TensorEnergy | None:
    """The committed measurement, if the package ships one."""
    return read_shipped(FILE_NAME, TensorEnergy)
