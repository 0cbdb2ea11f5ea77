"""Voltage–frequency curves and idle power per SM clock.

Core-domain dynamic energy per event scales with V²; idle power rises with the clock (clock tree
and leakage at the higher voltage). Where a part's tables were measured, joulecast ships a fitted
piecewise-linear curve (knots every 150 MHz, produced by ``joulecast calibrate``); where only the
idle table was measured (H100, whose NVML reports no voltage) the voltage is inferred from it
(:mod:`joulecast.calibration.dvfs_fit`) and shipped the same way, for the parts sharing that die
too. Elsewhere it uses a generic curve: voltage flat at ``v_min`` up to ``knee·f_max`` then
linear to ``v_max``, and ``idle(f) = idle_static + k·V(f)²·f`` anchored to the spec's idle
power. See docs/hardware.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from joulecast.hardware.spec import GPUSpec
from joulecast.yamlio import load_yaml_text

GENERIC_V_MIN_MV = 700.0
GENERIC_V_MAX_MV = 900.0
GENERIC_KNEE = 0.72
GENERIC_IDLE_DYNAMIC_SHARE = 0.35
# Marks a shipped voltage curve inferred from an idle table rather than measured.
VOLTAGE_SOURCE_INFERRED = "inferred from idle(f)"
# The board's power limiter regulates a few watts below the limit it is given: on the A100-PCIe
# DVFS sweep every throttled pass settles at 238–243 W under its 250 W limit (mean 241 W); in the
# H200 kernel-power tables the capped calls read 690–698 W under 700 W. An absolute guard band
# fits both within about 1 % (a fixed fraction of the limit would miss the H200 by 3 %).
POWER_LIMIT_GUARD_W = 9.0
_CapT = TypeVar("_CapT", float, NDArray[np.float64])


def regulated_power_w(power_cap_w: _CapT) -> _CapT:
    """Average board power the limiter holds a throttled pass at, for a given power cap."""
    return power_cap_w - POWER_LIMIT_GUARD_W


@dataclass(frozen=True)
class DvfsCurve:
    """Supply voltage and idle board power as functions of the SM clock.

    ``measured`` is true where the voltage itself was measured (not generic, not inferred).
    """

    clock_mhz: NDArray[np.float64]
    voltage_mv: NDArray[np.float64]
    idle_w: NDArray[np.float64]
    measured: bool

    def voltage(self, clock_mhz: ArrayLike) -> NDArray[np.float64]:
        """Supply voltage (mV) at ``clock_mhz`` (linear interpolation between knots)."""
        return np.asarray(
            np.interp(np.asarray(clock_mhz, float), self.clock_mhz, self.voltage_mv), float
        )

    def idle_power(self, clock_mhz: ArrayLike) -> NDArray[np.float64]:
        """Idle board power (W) with the SM clock locked at ``clock_mhz``."""
        return np.asarray(
            np.interp(np.asarray(clock_mhz, float), self.clock_mhz, self.idle_w), float
        )

    def v2_ratio(self, clock_mhz: ArrayLike, ref_clock_mhz: float) -> NDArray[np.float64]:
        """(V(f)/V(f_ref))²: the factor on core-domain energy per event."""
        ref = float(self.voltage(ref_clock_mhz))
        return np.asarray((self.voltage(clock_mhz) / ref) ** 2, dtype=np.float64)


def generic_curve(gpu: GPUSpec) -> DvfsCurve:
    """The documented default curve for a part without measured tables."""
    f = np.linspace(gpu.min_clock_mhz, gpu.max_clock_mhz, 24)
    knee = GENERIC_KNEE * gpu.max_clock_mhz
    slope = (GENERIC_V_MAX_MV - GENERIC_V_MIN_MV) / max(gpu.max_clock_mhz - knee, 1.0)
    v = GENERIC_V_MIN_MV + slope * np.clip(f - knee, 0.0, None)
    dyn = (v / GENERIC_V_MAX_MV) ** 2 * (f / gpu.max_clock_mhz)
    # idle_power_w is quoted at mid/low clocks, where the dynamic share sits near its floor.
    ref_dyn = float(np.interp(gpu.base_clock_mhz * 0.6, f, dyn))
    static = gpu.idle_power_w * (1.0 - GENERIC_IDLE_DYNAMIC_SHARE)
    k = gpu.idle_power_w * GENERIC_IDLE_DYNAMIC_SHARE / ref_dyn
    return DvfsCurve(f, v, static + k * dyn, measured=False)


@cache
def _shipped() -> dict[str, dict[str, Any]]:
    path = resources.files("joulecast.coefficients") / "data" / "dvfs_curves.yaml"
    if not path.is_file():
        return {}
    data = load_yaml_text(path.read_text(encoding="utf-8")) or {}
    return {str(k): v for k, v in data.items()}


def curve_from_entry(gpu: GPUSpec, entry: dict[str, Any]) -> DvfsCurve:
    """The curve of one entry of ``dvfs_curves.yaml`` (knots of idle(f) and V(f)); a missing
    table falls back to the generic curve's."""
    f = np.asarray(entry["clock_mhz"], float)
    gen = generic_curve(gpu)
    v = np.asarray(entry["voltage_mv"], float) if entry.get("voltage_mv") else gen.voltage(f)
    idle = np.asarray(entry["idle_w"], float) if entry.get("idle_w") else gen.idle_power(f)
    measured = bool(entry.get("voltage_mv")) and entry.get("voltage_source") is None
    return DvfsCurve(f, v, idle, measured=measured)


def dvfs_curve(gpu: GPUSpec) -> DvfsCurve:
    """The part's fitted curve where one was measured, else the generic curve."""
    entry = _shipped().get(gpu.id)
    if entry is None:
        return generic_curve(gpu)
    return curve_from_entry(gpu, entry)
