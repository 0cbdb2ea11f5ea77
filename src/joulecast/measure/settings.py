"""Clock locking and power limits around a measurement, and the provenance of each result.

:class:`DeviceSettings` locks the SM clock and sets the power limit where the process is
permitted, and restores both afterwards. A refusal (no permission: clocks and limits need root)
or an unsupported part is reported in :attr:`Settings.notes`, never a crash: the measurement
then runs at the clocks the driver chooses, and says so. A power limit outside the part's range
is a user mistake (one-line :class:`~joulecast.errors.ClockError`).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from joulecast.errors import ClockError
from joulecast.measure.meter import GpuMeter, MeasureError, NoPermissionError, NotSupportedError

_WHY = {
    NoPermissionError: "no permission (needs root, or nvidia-smi as root)",
    NotSupportedError: "not supported by this part",
}


def _why(exc: MeasureError) -> str:
    return next((w for cls, w in _WHY.items() if isinstance(exc, cls)), str(exc))


@dataclass(frozen=True)
class Settings:
    """The clocks and limits a measurement ran under.

    Attributes:
        requested_sm_clock_mhz: ``--sm-clock`` (``None``: not asked; the driver chooses).
        sm_clock_locked: whether every measured GPU was locked at it.
        requested_power_limit_w: ``--power-limit`` (``None``: not asked).
        power_limit_w: the limit in force on the first measured GPU (``None``: not readable).
        notes: what was refused or not supported, one line each.
    """

    requested_sm_clock_mhz: float | None
    sm_clock_locked: bool
    requested_power_limit_w: float | None
    power_limit_w: float | None
    notes: tuple[str, ...] = ()


class DeviceSettings:
    """Apply ``sm_clock_mhz`` and ``power_limit_w`` to ``gpus``; :meth:`restore` undoes them."""

    def __init__(
        self,
        meter: GpuMeter,
        gpus: Sequence[int],
        sm_clock_mhz: float | None = None,
        power_limit_w: float | None = None,
    ) -> None:
        self._meter, self._gpus = meter, tuple(gpus)
        self._clock, self._limit = sm_clock_mhz, power_limit_w
        self._locked: list[int] = []
        self._old_limit_mw: dict[int, int] = {}

    def _check_limit(self, gpu: int, limit_w: float) -> None:
        try:
            lo, hi = self._meter.power_limit_range_mw(gpu)
        except (NotSupportedError, NoPermissionError):
            return  # setting it will say why
        if not lo <= limit_w * 1e3 <= hi:
            raise ClockError(
                f"power limit {limit_w:g} W is outside GPU {gpu}'s range "
                f"[{lo / 1e3:g}, {hi / 1e3:g}] W"
            )

    def apply(self) -> Settings:
        """Lock clocks and set limits where permitted; report what was refused.

        Raises:
            ClockError: a power limit outside the part's range, or a clock <= 0.
        """
        notes: list[str] = []
        if self._clock is not None and not self._clock > 0:
            raise ClockError(f"--sm-clock must be > 0 MHz, got {self._clock:g}")
        if self._limit is not None:
            for g in self._gpus:
                self._check_limit(g, self._limit)
        for g in self._gpus:
            if self._clock is not None:
                try:
                    self._meter.lock_sm_clock_mhz(g, round(self._clock))
                    self._locked.append(g)
                except (NoPermissionError, NotSupportedError) as exc:
                    notes.append(
                        f"GPU {g}: SM clock not locked at {self._clock:g} MHz: {_why(exc)}"
                    )
            if self._limit is not None:
                try:
                    old = self._meter.power_limit_mw(g)
                    self._meter.set_power_limit_mw(g, round(self._limit * 1e3))
                    self._old_limit_mw[g] = old
                except (NoPermissionError, NotSupportedError) as exc:
                    notes.append(f"GPU {g}: power limit not set to {self._limit:g} W: {_why(exc)}")
        in_force: float | None
        try:
            in_force = self._meter.power_limit_mw(self._gpus[0]) / 1e3 if self._gpus else None
        except NotSupportedError:
            in_force = None
        return Settings(
            requested_sm_clock_mhz=self._clock,
            sm_clock_locked=self._clock is not None and len(self._locked) == len(self._gpus),
            requested_power_limit_w=self._limit,
            power_limit_w=in_force,
            notes=tuple(notes),
        )

    def restore(self) -> tuple[str, ...]:
        """Unlock clocks and restore limits that :meth:`apply` changed; notes on failures."""
        notes = []
        for g in self._locked:
            try:
                self._meter.reset_sm_clock(g)
            except MeasureError as exc:
                notes.append(f"GPU {g}: could not unlock the SM clock: {exc}")
        for g, old in self._old_limit_mw.items():
            try:
                self._meter.set_power_limit_mw(g, old)
            except MeasureError as exc:
                notes.append(f"GPU {g}: could not restore the power limit {old / 1e3:g} W: {exc}")
        self._locked.clear()
        self._old_limit_mw.clear()
        return tuple(notes)


@dataclass(frozen=True)
class Provenance:
    """Where and how a result was measured; written with every saved file.

    Attributes:
        date: UTC time, ISO 8601.
        gpu_name: product name of the first measured GPU.
        driver: display driver version.
        cuda: CUDA version the driver supports.
        torch: PyTorch version and its CUDA build (empty when PyTorch was not used).
        joulecast: joulecast version.
        python: Python version.
    """

    date: str
    gpu_name: str
    driver: str
    cuda: str
    torch: str
    joulecast: str
    python: str

    def as_dict(self) -> dict[str, str]:
        """The fields as strings, for CSV columns and JSON."""
        return asdict(self)


def _safe(fn: object) -> str:
    try:
        return str(fn()) if callable(fn) else ""
    except MeasureError:
        return "unknown"


def collect_provenance(meter: GpuMeter, gpus: Sequence[int], date: str | None = None) -> Provenance:
    """Driver, CUDA, torch and joulecast versions and the date; torch only if already imported."""
    from joulecast import __version__

    torch = sys.modules.get("torch")
    torch_v = ""
    if torch is not None:
        version = getattr(torch, "__version__", "")
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
        torch_v = f"{version} (CUDA {cuda})" if cuda else str(version)
    return Provenance(
        date=date or datetime.now(UTC).isoformat(timespec="seconds"),
        gpu_name=_safe(lambda: meter.name(gpus[0])) if gpus else "",
        driver=_safe(meter.driver_version),
        cuda=_safe(meter.cuda_driver_version),
        torch=torch_v,
        joulecast=__version__,
        python=platform.python_version(),
    )
