"""The NVML implementation of :class:`~joulecast.measure.meter.GpuMeter`.

``pynvml`` (the ``nvidia-ml-py`` package, extra ``joulecast[nvml]``) is imported here and only
here, when a meter is opened. NVML errors become joulecast's: ``NVMLError_NotSupported`` ->
:class:`~joulecast.measure.meter.NotSupportedError`, ``NVMLError_NoPermission`` ->
:class:`~joulecast.measure.meter.NoPermissionError`, any other -> a one-line
:class:`~joulecast.measure.meter.MeasureError`. A module object can be injected (tests).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from joulecast.measure.meter import MeasureError, NoPermissionError, NotSupportedError

T = TypeVar("T")

INSTALL_HINT = "pip install 'joulecast[nvml]'"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlMeter:
    """GPU meter over NVML (see :class:`~joulecast.measure.meter.GpuMeter`).

    Args:
        nvml: the ``pynvml`` module, or a stand-in with the same names (default: import it).

    Raises:
        MeasureError: pynvml is not installed, or NVML cannot start (no driver, no GPU).
    """

    def __init__(self, nvml: Any | None = None) -> None:
        if nvml is None:
            try:
                nvml = importlib.import_module("pynvml")
            except ImportError:
                raise MeasureError(
                    f"measuring needs NVIDIA's NVML bindings: {INSTALL_HINT}"
                ) from None
        self._nvml = nvml
        self._call(nvml.nvmlInit, "start (is an NVIDIA driver installed?)")
        count = self._call(nvml.nvmlDeviceGetCount, "count GPUs")
        self._handles: list[Any] = [
            self._call(partial(nvml.nvmlDeviceGetHandleByIndex, i), f"open GPU {i}")
            for i in range(count)
        ]

    def _call(self, fn: Callable[[], T], what: str) -> T:
        nvml = self._nvml
        try:
            return fn()
        except nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            detail = str(exc).strip() or type(exc).__name__
            if code == nvml.NVML_ERROR_NOT_SUPPORTED:
                raise NotSupportedError(f"{what}: not supported ({detail})") from None
            if code == nvml.NVML_ERROR_NO_PERMISSION:
                raise NoPermissionError(f"{what}: no permission ({detail})") from None
            raise MeasureError(f"NVML could not {what}: {detail}") from None

    def _handle(self, index: int) -> Any:
        if not 0 <= index < len(self._handles):
            raise MeasureError(f"no GPU {index} (this machine has {len(self._handles)})")
        return self._handles[index]

    def device_count(self) -> int:
        """Number of GPUs NVML sees."""
        return len(self._handles)

    def name(self, index: int) -> str:
        """``nvmlDeviceGetName``."""
        h = self._handle(index)
        return _text(self._call(lambda: self._nvml.nvmlDeviceGetName(h), "read the name"))

    def energy_mj(self, index: int) -> int:
        """``nvmlDeviceGetTotalEnergyConsumption`` (mJ)."""
        h = self._handle(index)
        fn = self._nvml.nvmlDeviceGetTotalEnergyConsumption
        return int(self._call(lambda: fn(h), "read the energy counter"))

    def power_mw(self, index: int) -> int:
        """``nvmlDeviceGetPowerUsage`` (mW)."""
        h = self._handle(index)
        return int(self._call(lambda: self._nvml.nvmlDeviceGetPowerUsage(h), "read power"))

    def sm_clock_mhz(self, index: int) -> int:
        """``nvmlDeviceGetClockInfo(NVML_CLOCK_SM)`` (MHz)."""
        h, nv = self._handle(index), self._nvml
        return int(self._call(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM), "read clock"))

    def temperature_c(self, index: int) -> int:
        """``nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)`` (°C)."""
        h, nv = self._handle(index), self._nvml
        return int(
            self._call(
                lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU), "read temperature"
            )
        )

    def power_limit_mw(self, index: int) -> int:
        """``nvmlDeviceGetPowerManagementLimit`` (mW)."""
        h = self._handle(index)
        fn = self._nvml.nvmlDeviceGetPowerManagementLimit
        return int(self._call(lambda: fn(h), "read the power limit"))

    def power_limit_range_mw(self, index: int) -> tuple[int, int]:
        """``nvmlDeviceGetPowerManagementLimitConstraints`` (mW)."""
        h = self._handle(index)
        fn = self._nvml.nvmlDeviceGetPowerManagementLimitConstraints
        lo, hi = self._call(lambda: fn(h), "read the power limit range")
        return int(lo), int(hi)

    def set_power_limit_mw(self, index: int, limit_mw: int) -> None:
        """``nvmlDeviceSetPowerManagementLimit`` (mW; needs root)."""
        h = self._handle(index)
        fn = self._nvml.nvmlDeviceSetPowerManagementLimit
        self._call(lambda: fn(h, int(limit_mw)), "set the power limit")

    def lock_sm_clock_mhz(self, index: int, clock_mhz: int) -> None:
        """``nvmlDeviceSetGpuLockedClocks(f, f)`` (needs root)."""
        h = self._handle(index)
        fn = self._nvml.nvmlDeviceSetGpuLockedClocks
        self._call(lambda: fn(h, int(clock_mhz), int(clock_mhz)), "lock the SM clock")

    def reset_sm_clock(self, index: int) -> None:
        """``nvmlDeviceResetGpuLockedClocks``."""
        h = self._handle(index)
        fn = self._nvml.nvmlDeviceResetGpuLockedClocks
        self._call(lambda: fn(h), "reset the SM clock")

    def driver_version(self) -> str:
        """``nvmlSystemGetDriverVersion``."""
        fn = self._nvml.nvmlSystemGetDriverVersion
        return _text(self._call(fn, "read the driver version"))

    def cuda_driver_version(self) -> str:
        """``nvmlSystemGetCudaDriverVersion`` as ``major.minor``."""
        v = int(self._call(self._nvml.nvmlSystemGetCudaDriverVersion, "read the CUDA version"))
        return f"{v // 1000}.{v % 1000 // 10}"

    def close(self) -> None:
        """``nvmlShutdown``."""
        self._call(self._nvml.nvmlShutdown, "shut down")
