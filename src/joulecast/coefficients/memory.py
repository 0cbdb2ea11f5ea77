"""Energy per byte streamed from HBM, as measured on Hopper kernels and shipped with the package.

The measurement itself (which rows, how) lives in :mod:`joulecast.calibration.memory_energy`;
this module only reads its shipped result at run time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

from joulecast.errors import CalibrationError
from joulecast.yamlio import dump_yaml, load_yaml_text

FILE_NAME = "memory_energy.yaml"
_T = TypeVar("_T")


@dataclass(frozen=True)
class MemoryEnergy:
    """Measured energy per byte streamed from HBM on one part (at its maximum clock).

    Attributes:
        gpu: part the rows were measured on.
        technology: its memory technology.
        dram_pj_per_byte: median over rows (pJ per byte read or written in DRAM).
        p25_pj_per_byte: lower quartile over rows.
        p75_pj_per_byte: upper quartile over rows.
        rows: rows used.
        source: table and selection.
    """

    gpu: str
    technology: str
    dram_pj_per_byte: float
    p25_pj_per_byte: float
    p75_pj_per_byte: float
    rows: int
    source: str

    def to_yaml(self) -> str:
        """YAML of the measurement, as shipped."""
        return dump_yaml(asdict(self))


def read_shipped(file_name: str, cls: type[_T]) -> _T | None:
    """The measurement ``cls`` shipped as ``data/<file_name>``, if the package ships one."""
    path = Path(str(resources.files("joulecast.coefficients") / "data" / file_name))
    if not path.is_file():
        return None
    try:
        return cls(**load_yaml_text(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise CalibrationError(f"cannot read {file_name}: {exc}".splitlines()[0]) from None


@cache
def shipped_memory_energy() -> MemoryEnergy | None:
    """The committed measurement, if the package ships one."""
    return read_shipped(FILE_NAME, MemoryEnergy)
