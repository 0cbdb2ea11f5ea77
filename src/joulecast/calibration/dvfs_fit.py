"""Fit compact V(f) and idle(f) curves from measured per-clock tables.

The EnergAIzer artifact measured, per locked SM clock (15 MHz steps), the supply voltage and the
idle board power. joulecast ships a piecewise-linear summary of them (knots every 150 MHz,
least-squares fit of the knot values), not the tables themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Measured table folder name -> joulecast GPU id.
DVFS_TABLES = {"yz8": "a100-pcie-40gb", "netsres117": "a100-sxm4-80gb", "h100": "h100-sxm"}
KNOT_STEP_MHZ = 150.0


def _piecewise_fit(f: np.ndarray, y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    # Hat-function basis: the knot values that best reproduce the table by interpolation.
    basis = np.stack([np.interp(f, knots, np.eye(len(knots))[i]) for i in range(len(knots))], 1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return np.asarray(coef)


def _table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = json.loads(path.read_text())
    pairs = sorted((float(k), v) for k, v in raw.items() if v is not None)
    if not pairs:
        return np.array([]), np.array([])
    f, y = zip(*pairs, strict=True)
    return np.asarray(f, float), np.asarray(y, float)


def fit_dvfs_curves(dvfs_dir: Path) -> dict[str, dict[str, list[float]]]:
    """Knots of V(f) and idle(f) for every part with measured tables under ``dvfs_dir``."""
    out: dict[str, dict[str, list[float]]] = {}
    for folder, gpu_id in DVFS_TABLES.items():
        vf, v = _table(dvfs_dir / folder / "supply_voltage.json")
        idf, idle = _table(dvfs_dir / folder / "idle_power.json")
        if len(idf) == 0:
            continue
        lo, hi = idf.min(), idf.max()
        knots = np.unique(np.append(np.arange(lo, hi, KNOT_STEP_MHZ), hi))
        entry: dict[str, list[float]] = {
            "clock_mhz": knots.round(1).tolist(),
            "idle_w": _piecewise_fit(idf, idle, knots).round(2).tolist(),
        }
        if len(vf) > 0:
            entry["voltage_mv"] = _piecewise_fit(vf, v, knots).round(2).tolist()
        out[gpu_id] = entry
    return out
