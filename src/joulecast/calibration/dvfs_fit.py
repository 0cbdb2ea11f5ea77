"""Fit compact V(f) and idle(f) curves from measured per-clock tables; infer Hopper's V(f).

The EnergAIzer artifact measured, per locked SM clock (15 MHz steps), the supply voltage and the
idle board power. joulecast ships a piecewise-linear summary of them (knots every 150 MHz,
least-squares fit of the knot values), not the tables themselves.

NVML reports no voltage on the H100, but its idle-power table rises with the clock, and on the
A100s, where both were measured, idle power follows the voltage closely::

    idle(f) = S + (L + D·f)·x(f)²,   x = V(f) / V_floor

with ``S`` the voltage-independent board power (memory, regulators, fans), ``L`` the die's
leakage and ``D·f`` its clock-tree power, both at the floor voltage (rms residual 0.31 W on the
A100-PCIe, 0.35 W on the A100-SXM4 over 210-1410 MHz). On the H100 the floor region (below the
clock where voltage starts to rise) gives ``S + L`` and ``D`` (a straight line); the leakage
share ``rho = L / (S + L)`` is taken from the A100s (0.438 and 0.380, their mean is used); then
``x(f)² = (idle(f) − S) / (L + D·f)`` above the floor. Where it applies and how uncertain it is:
docs/hardware.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from joulecast.dvfs import GENERIC_V_MIN_MV, VOLTAGE_SOURCE_INFERRED
from joulecast.hardware.spec import load_gpu

FloatArray = NDArray[np.float64]

# Measured table folder name -> joulecast GPU id.
DVFS_TABLES = {"yz8": "a100-pcie-40gb", "netsres117": "a100-sxm4-80gb", "h100": "h100-sxm"}
KNOT_STEP_MHZ = 150.0
# Parts whose voltage is inferred from their idle table, and the parts sharing their die (same
# V(f); idle shifted by the difference of their spec idle power: memory and board).
INFERRED_VOLTAGE = {"h100-sxm": ("h200",)}
# Tables where both voltage and idle were measured: the idle-voltage relation.
RELATION_TABLES = ("yz8", "netsres117")
# The floor region ends where a straight line through idle(f) from FLOOR_START_MHZ stops fitting
# as well as the A100s' own floor regions fit it (rms residual of idle power, W).
FLOOR_FIT_RMS_W = 0.31
# Below this clock the H100 table falls with the clock (72.8 -> 72.1 W, and 117 W at 345 MHz):
# the start of the sweep settling, not a clock or voltage effect.
FLOOR_START_MHZ = 510.0


def _piecewise_fit(f: FloatArray, y: FloatArray, knots: FloatArray) -> FloatArray:
    # Hat-function basis: the knot values that best reproduce the table by interpolation.
    basis = np.stack([np.interp(f, knots, np.eye(len(knots))[i]) for i in range(len(knots))], 1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return np.asarray(coef)


def _table(path: Path) -> tuple[FloatArray, FloatArray]:
    if not path.is_file():
        return np.array([]), np.array([])
    raw = json.loads(path.read_text())
    pairs = sorted((float(k), v) for k, v in raw.items() if v is not None)
    if not pairs:
        return np.array([]), np.array([])
    f, y = zip(*pairs, strict=True)
    return np.asarray(f, float), np.asarray(y, float)


@dataclass(frozen=True)
class IdleVoltageRelation:
    """``idle(f) = S + (L + D·f)·(V/V_floor)²`` fitted on one part's measured tables.

    Attributes:
        static_w: ``S``, board power that does not depend on the core voltage.
        leakage_w: ``L``, die leakage at the floor voltage.
        clock_w_per_mhz: ``D``, clock-tree power per MHz at the floor voltage.
        rms_w: rms residual of the fit.
    """

    static_w: float
    leakage_w: float
    clock_w_per_mhz: float
    rms_w: float

    @property
    def leakage_share(self) -> float:
        """``L / (S + L)``: the share of the floor-clock idle power that scales with V²."""
        return self.leakage_w / (self.static_w + self.leakage_w)


def idle_voltage_relation(dvfs_dir: Path, folder: str) -> IdleVoltageRelation:
    """Fit :class:`IdleVoltageRelation` on a part with both tables measured."""
    fv, v = _table(dvfs_dir / folder / "supply_voltage.json")
    fi, idle = _table(dvfs_dir / folder / "idle_power.json")
    v_at = np.interp(fi, fv, v)
    x2 = (v_at / v_at.min()) ** 2
    basis = np.stack([np.ones_like(fi), x2 - 1.0, fi * x2], axis=1)
    # idle = (S + L) + L·(x² − 1) + D·f·x²
    (s_plus, leak, d), *_ = np.linalg.lstsq(basis, idle, rcond=None)
    rms = float(np.sqrt(np.mean((basis @ np.array([s_plus, leak, d]) - idle) ** 2)))
    return IdleVoltageRelation(float(s_plus - leak), float(leak), float(d), rms)


def floor_end_mhz(f: FloatArray, idle: FloatArray, max_rms_w: float = FLOOR_FIT_RMS_W) -> float:
    """Highest clock up to which a straight line through ``idle(f)`` (from
    :data:`FLOOR_START_MHZ`) fits within ``max_rms_w``: the end of the voltage floor."""
    best = float(f[f >= FLOOR_START_MHZ][2])
    for end in f[f >= FLOOR_START_MHZ][3:]:
        sel = (f >= FLOOR_START_MHZ) & (f <= end)
        coef = np.polyfit(f[sel], idle[sel], 1)
        if np.sqrt(np.mean((np.polyval(coef, f[sel]) - idle[sel]) ** 2)) > max_rms_w:
            break
        best = float(end)
    return best


def infer_voltage(
    f: FloatArray, idle: FloatArray, leakage_share: float, floor_end: float
) -> FloatArray:
    """V(f)/V_floor from an idle table through the A100 relation (module doc).

    The floor region ``[FLOOR_START_MHZ, floor_end]`` gives ``S + L`` and ``D`` by a straight
    line; ``leakage_share`` splits ``S + L``. The ratio is 1 on the floor and never falls with
    the clock (a flat idle table at the top clocks means no further voltage step).
    """
    sel = (f >= FLOOR_START_MHZ) & (f <= floor_end)
    d, s_plus = np.polyfit(f[sel], idle[sel], 1)
    leak = leakage_share * s_plus
    static = s_plus - leak
    x2 = (idle - static) / (leak + d * f)
    x = np.sqrt(np.clip(x2, 1.0, None))
    x[f <= floor_end] = 1.0
    return np.asarray(np.maximum.accumulate(x), dtype=np.float64)


def mean_leakage_share(dvfs_dir: Path) -> tuple[float, list[float]]:
    """Mean leakage share of the parts in :data:`RELATION_TABLES` and each one's value."""
    shares = [idle_voltage_relation(dvfs_dir, t).leakage_share for t in RELATION_TABLES]
    return float(np.mean(shares)), shares


def inferred_voltage_knots(
    dvfs_dir: Path,
    knots: FloatArray,
    leakage_share: float | None = None,
    floor_end: float | None = None,
) -> FloatArray | None:
    """Knots of the H100's inferred V(f) in mV (floor at the generic curve's floor), or
    ``None`` without the tables. ``leakage_share`` and ``floor_end`` override the mean A100
    share and :func:`floor_end_mhz` (to show the uncertainty)."""
    f, idle = _table(dvfs_dir / "h100" / "idle_power.json")
    if len(f) == 0 or not all((dvfs_dir / t).is_dir() for t in RELATION_TABLES):
        return None
    share = leakage_share if leakage_share is not None else mean_leakage_share(dvfs_dir)[0]
    end = floor_end if floor_end is not None else floor_end_mhz(f, idle)
    x = infer_voltage(f, idle, share, end)
    v = _piecewise_fit(f, GENERIC_V_MIN_MV * x, knots)
    return np.asarray(np.maximum.accumulate(np.maximum(v, GENERIC_V_MIN_MV)), dtype=np.float64)


def fit_dvfs_curves(
    dvfs_dir: Path, leakage_share: float | None = None, floor_end: float | None = None
) -> dict[str, dict[str, object]]:
    """Knots of V(f) and idle(f) for every part with measured tables under ``dvfs_dir``, plus
    the inferred H100 voltage and the parts sharing its die (:data:`INFERRED_VOLTAGE`;
    ``leakage_share`` and ``floor_end``: see :func:`inferred_voltage_knots`)."""
    out: dict[str, dict[str, object]] = {}
    for folder, gpu_id in DVFS_TABLES.items():
        vf, v = _table(dvfs_dir / folder / "supply_voltage.json")
        idf, idle = _table(dvfs_dir / folder / "idle_power.json")
        if len(idf) == 0:
            continue
        lo, hi = idf.min(), idf.max()
        knots = np.unique(np.append(np.arange(lo, hi, KNOT_STEP_MHZ), hi))
        idle_knots = _piecewise_fit(idf, idle, knots)
        entry: dict[str, object] = {
            "clock_mhz": knots.round(1).tolist(),
            "idle_w": idle_knots.round(2).tolist(),
        }
        if len(vf) > 0:
            entry["voltage_mv"] = _piecewise_fit(vf, v, knots).round(2).tolist()
        elif gpu_id in INFERRED_VOLTAGE:
            inferred = inferred_voltage_knots(dvfs_dir, knots, leakage_share, floor_end)
            if inferred is not None:
                entry["voltage_mv"] = inferred.round(2).tolist()
                entry["voltage_source"] = VOLTAGE_SOURCE_INFERRED
                own = load_gpu(gpu_id)
                for twin in INFERRED_VOLTAGE[gpu_id]:
                    shift = load_gpu(twin).idle_power_w - own.idle_power_w
                    out[twin] = {
                        "clock_mhz": knots.round(1).tolist(),
                        "idle_w": (idle_knots + shift).round(2).tolist(),
                        "voltage_mv": inferred.round(2).tolist(),
                        "voltage_source": VOLTAGE_SOURCE_INFERRED,
                    }
        out[gpu_id] = entry
    return dict(sorted(out.items()))
